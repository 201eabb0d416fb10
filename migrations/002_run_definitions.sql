-- The API keeps each run's current (possibly patched) definition beside its row, and looks up who may read a
-- CAS blob through the steps that produced it.
ALTER TABLE runs ADD COLUMN definition jsonb;
-- The IR version `definition` compiles to; patches check it under a row lock, so none is ever lost.
ALTER TABLE runs ADD COLUMN definition_version integer NOT NULL DEFAULT 1;
CREATE INDEX runs_tenant_status_created_idx ON runs (tenant_id, status, created_at DESC);
CREATE INDEX run_steps_cas_ref_idx ON run_steps (output_ref) WHERE output_ref LIKE 'cas://%';
CREATE INDEX patches_run_idx ON patches (run_id, to_version);
CREATE INDEX workflows_tenant_created_idx ON workflows (tenant_id, created_at DESC);
