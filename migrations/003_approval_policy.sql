-- What the hitl worker and the decide route need beyond 001's approvals columns.
-- attempt: the hitl token's attempt, echoed by the completion that resumes the run.
-- allow_self_approval: whether the key that started the run (created_by) may decide.
-- timeout_token: the wf.delayed member that applies on_timeout, removed once the approval is settled.
ALTER TABLE approvals
    ADD COLUMN attempt integer NOT NULL DEFAULT 1,
    ADD COLUMN allow_self_approval boolean NOT NULL DEFAULT false,
    ADD COLUMN timeout_token text;
-- Token ids ("<epoch>:<node>:<attempt>") are unique within a run only, so the redelivery key includes the run.
ALTER TABLE approvals DROP CONSTRAINT approvals_token_id_key;
ALTER TABLE approvals ADD CONSTRAINT approvals_run_token_key UNIQUE (run_id, token_id);
-- Recovery looks for recently decided approvals whose completion may have been lost.
CREATE INDEX approvals_decided_idx ON approvals (decided_at) WHERE decided_at IS NOT NULL;
