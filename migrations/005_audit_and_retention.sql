-- Operators' actions (replaying or discarding a dead letter, pruning old runs), written in the request that
-- takes them. tenant_id is the tenant whose data the action touched (the caller's when it touched none of one
-- tenant's); key_id is the API key that acted.
CREATE TABLE audit_log (
    id         text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    tenant_id  text NOT NULL,
    key_id     text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_at_idx ON audit_log (tenant_id, at DESC, id DESC);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
-- Retention finds ended runs by when they ended.
CREATE INDEX runs_ended_idx ON runs (ended_at) WHERE status IN ('succeeded', 'failed', 'cancelled', 'timed_out');
