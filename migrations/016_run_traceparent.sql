-- OpenTelemetry (issue 16): the W3C trace context a run was started in, so a run rebuilt from Postgres keeps
-- adding its spans to the same trace (docs/observability.md). NULL for runs started with tracing off.
ALTER TABLE runs ADD COLUMN traceparent text;
