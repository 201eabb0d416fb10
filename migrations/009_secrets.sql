-- The secrets store: one value per (tenant, name), held only as a Fernet token (encrypted and authenticated with
-- a key from AOB_SECRETS_KEYS, which never reaches the database). Names and times are shown to the tenant; the
-- value is read back only by workers, at execution time.
CREATE TABLE secrets (
    tenant_id   text NOT NULL,
    name        text NOT NULL,
    ciphertext  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text,
    PRIMARY KEY (tenant_id, name)
);
