-- The initial aob schema (ARCHITECTURE §2). Tables are unqualified: they land in the schema on search_path.
-- Ledger-fed tables (runs, run_steps, patches, approvals, node_logs, run_events) carry no foreign keys on
-- purpose: the recorder writes them in batches and in any order, and must never be refused a row.
-- Text ids default to a random uuid so callers may supply their own (run ids, ulids) or let Postgres pick.

CREATE TABLE tenants (
    id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL DEFAULT '',
    role        text NOT NULL CHECK (role IN ('admin', 'member')),
    key_hash    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

CREATE TABLE workflows (
    id              text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    tenant_id       text NOT NULL,
    name            text NOT NULL,
    description     text,
    latest_version  integer NOT NULL DEFAULT 0,
    archived_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE workflow_versions (
    workflow_id   text NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version       integer NOT NULL,
    definition    jsonb NOT NULL,
    content_hash  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE runs (
    id               text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    tenant_id        text NOT NULL,
    workflow_id      text,
    workflow_name    text,
    version          integer,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    inputs           jsonb NOT NULL DEFAULT '{}',
    outputs          jsonb,
    error            jsonb,
    idempotency_key  text,
    request_hash     text,
    started_by       text,
    parent_run_id    text,
    parent_node_id   text,
    ir_version       integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    ended_at         timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX runs_idempotency_idx ON runs (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_tenant_created_idx ON runs (tenant_id, created_at DESC);
CREATE INDEX runs_tenant_workflow_created_idx ON runs (tenant_id, workflow_id, created_at DESC);
CREATE INDEX runs_parent_idx ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

CREATE TABLE run_steps (
    run_id      text NOT NULL,
    node_id     text NOT NULL,
    attempt     integer NOT NULL,
    status      text NOT NULL,
    queued_at   timestamptz,
    started_at  timestamptz,
    ended_at    timestamptz,
    queue_ms    double precision,
    exec_ms     double precision,
    worker_id   text,
    output_ref  text,
    error       jsonb,
    PRIMARY KEY (run_id, node_id, attempt)
);

CREATE TABLE patches (
    id            text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    run_id        text NOT NULL,
    from_version  integer NOT NULL,
    to_version    integer NOT NULL,
    ops           jsonb NOT NULL,
    author        text,
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, to_version)
);

CREATE TABLE approvals (
    id                  text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    tenant_id           text NOT NULL,
    run_id              text NOT NULL,
    node_id             text NOT NULL,
    -- unique so a redelivered hitl token finds its approval instead of opening a second one
    token_id            text UNIQUE,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled', 'expired')),
    title               text,
    description         text,
    approvers           jsonb NOT NULL DEFAULT '[]',
    required_approvals  integer NOT NULL DEFAULT 1 CHECK (required_approvals >= 1),
    decisions           jsonb NOT NULL DEFAULT '[]',
    created_by          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz,
    decided_at          timestamptz
);
CREATE INDEX approvals_tenant_status_idx ON approvals (tenant_id, status, created_at DESC);
CREATE INDEX approvals_run_idx ON approvals (run_id);

-- digest is the sha256 hex of data (the <hex> of cas://sha256:<hex>); data is JSON text.
CREATE TABLE blobs (
    digest      text PRIMARY KEY,
    data        text NOT NULL,
    size        integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE node_logs (
    run_id      text NOT NULL,
    node_id     text NOT NULL,
    attempt     integer NOT NULL,
    lines       integer NOT NULL DEFAULT 0,
    bytes       bigint NOT NULL DEFAULT 0,
    truncated   boolean NOT NULL DEFAULT false,
    text        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, node_id, attempt)
);

-- events:{R} entries archived once a run's stream is trimmed; event_id is the Redis stream entry id.
CREATE TABLE run_events (
    run_id      text NOT NULL,
    event_id    text NOT NULL,
    type        text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, event_id)
);
