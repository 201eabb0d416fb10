-- Schedules: a workflow started on a cron expression (in a time zone) or at a fixed interval. next_fire_at is the
-- next fire time not yet handled; coordinators claim due rows with FOR UPDATE SKIP LOCKED, and each fire time's
-- run carries the idempotency key 'schedule:<id>:<fire time>', so no fire time ever starts two runs.
CREATE TABLE schedules (
    id            text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    tenant_id     text NOT NULL,
    workflow_id   text NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version       integer,
    inputs        jsonb NOT NULL DEFAULT '{}',
    cron          text,
    timezone      text NOT NULL DEFAULT 'UTC',
    interval_s    integer CHECK (interval_s > 0),
    overlap       text NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'allow')),
    catchup       text NOT NULL DEFAULT 'none' CHECK (catchup IN ('none', 'last', 'all')),
    catchup_max   integer NOT NULL DEFAULT 10 CHECK (catchup_max >= 1),
    paused        boolean NOT NULL DEFAULT false,
    next_fire_at  timestamptz NOT NULL,
    last_fire_at  timestamptz,
    created_by    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((cron IS NULL) <> (interval_s IS NULL))
);
CREATE INDEX schedules_due_idx ON schedules (next_fire_at) WHERE NOT paused;
CREATE INDEX schedules_tenant_idx ON schedules (tenant_id, created_at);

ALTER TABLE runs ADD COLUMN schedule_id text;
CREATE INDEX runs_schedule_live_idx ON runs (schedule_id) WHERE schedule_id IS NOT NULL
    AND status IN ('queued', 'running', 'waiting');
