-- A patch is written as an intent before its IR swap in Redis, and confirmed in the transaction that records
-- the new definition: a crash at any point in between leaves a `pending` row that is settled from Redis
-- (applied when Redis holds its version, abandoned when not). Abandoned intents keep their row for the record,
-- so the one-patch-per-version rule only holds among the others.
ALTER TABLE patches ADD COLUMN state text NOT NULL DEFAULT 'applied'
    CHECK (state IN ('pending', 'applied', 'abandoned'));
ALTER TABLE patches ADD COLUMN definition jsonb;
ALTER TABLE patches DROP CONSTRAINT patches_run_id_to_version_key;
CREATE UNIQUE INDEX patches_run_version_idx ON patches (run_id, to_version) WHERE state <> 'abandoned';
CREATE INDEX patches_pending_idx ON patches (created_at) WHERE state = 'pending';
