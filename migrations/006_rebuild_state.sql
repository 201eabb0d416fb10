-- What rebuilding a live run's hot state from Postgres needs beyond what the rows held (docs/architecture.md,
-- "Losing Redis"): the run's epoch (token ids carry it), its deadline, the nodes its latest resume reset (their
-- older steps no longer count), the IR of a child run (child runs have no `definition`: the control worker starts
-- them), and per step the epoch it ran in and the branch it took (edges are decided on it).
ALTER TABLE runs
    ADD COLUMN epoch integer NOT NULL DEFAULT 0,
    ADD COLUMN deadline_at timestamptz,
    ADD COLUMN reset_nodes jsonb,
    ADD COLUMN ir jsonb;
-- NULL epoch: recorded before this migration (read as the run's epoch).
ALTER TABLE run_steps
    ADD COLUMN epoch integer,
    ADD COLUMN branch text;
-- The reconciler looks for live runs; the rest of the table is ended runs.
CREATE INDEX runs_live_idx ON runs (id) WHERE status IN ('queued', 'running', 'waiting');
