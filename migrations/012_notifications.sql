-- Notifications (issue 16): per-tenant subscriptions to run and approval events, the deliveries waiting to be
-- sent (one per subscription and event, so each event is delivered once per subscription) and the log of every
-- delivery attempt.
CREATE TABLE notification_subscriptions (
    id             text PRIMARY KEY,
    tenant_id      text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workflow_id    text,
    events         text[] NOT NULL,
    channel        text NOT NULL CHECK (channel IN ('webhook', 'email')),
    target         text NOT NULL,
    format         text NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack')),
    secret_enc     text,
    paused         boolean NOT NULL DEFAULT false,
    created_by     text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_subscriptions_tenant_idx ON notification_subscriptions (tenant_id, created_at);

CREATE TABLE notification_outbox (
    subscription_id text NOT NULL REFERENCES notification_subscriptions (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    payload         jsonb NOT NULL,
    attempt         integer NOT NULL DEFAULT 0,
    first_at        timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, event_id)
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (next_attempt_at);

CREATE TABLE notification_deliveries (
    id              bigserial PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES notification_subscriptions (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    run_id          text,
    attempt         integer NOT NULL,
    status          text NOT NULL CHECK (status IN ('delivered', 'failed', 'retrying')),
    response_code   integer,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_deliveries_sub_idx ON notification_deliveries (subscription_id, id DESC);
