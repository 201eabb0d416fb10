-- The latest runs of one schedule or one trigger (the UI's "last runs"), newest first, without walking every run
-- of the tenant.
CREATE INDEX runs_schedule_created_idx ON runs (tenant_id, schedule_id, created_at DESC) WHERE schedule_id IS NOT NULL;
CREATE INDEX runs_trigger_created_idx ON runs (tenant_id, trigger_id, created_at DESC) WHERE trigger_id IS NOT NULL;
