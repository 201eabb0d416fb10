-- Webhook triggers: POST /api/v1/hooks/{id} starts a run of a workflow. The id is random (it is in the URL the
-- sender is given), and the sender proves itself with one of at most two active secrets (two, so a secret rotates
-- without downtime). A bearer secret is kept only as its sha256; an HMAC secret is needed to verify signatures, so
-- it is kept as a Fernet token under AOB_SECRETS_KEYS, like the secrets store. ``secrets`` holds, oldest first,
-- {"id", "created_at"} plus "sha256" (bearer) or "ciphertext" (hmac).
CREATE TABLE triggers (
    id             text PRIMARY KEY,
    tenant_id      text NOT NULL,
    name           text NOT NULL,
    workflow_id    text NOT NULL,
    version        int,
    auth           text NOT NULL CHECK (auth IN ('bearer', 'hmac')),
    secrets        jsonb NOT NULL,
    input_mapping  jsonb NOT NULL DEFAULT '{}',
    headers        text[] NOT NULL DEFAULT '{}',
    rate_per_min   int NOT NULL,
    paused         boolean NOT NULL DEFAULT false,
    created_by     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX triggers_tenant_created_idx ON triggers (tenant_id, created_at DESC);

-- The trigger that started a run, when one did.
ALTER TABLE runs ADD COLUMN trigger_id text;
