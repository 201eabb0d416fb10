-- Roles admin, editor, approver, viewer (``member`` becomes ``editor``: it could do everything but keys), and the
-- owner of each key: the person or service approvals count, so two keys of one owner are one approver.
-- Existing keys are owned by their name, so keys that share a name count as one person (the safe reading of an
-- ambiguous history); a name that is empty or spells a role is not an identity, and such a key owns itself.
ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_role_check;
UPDATE api_keys SET role = 'editor' WHERE role = 'member';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('admin', 'editor', 'approver', 'viewer'));
ALTER TABLE api_keys ADD COLUMN owner text;
UPDATE api_keys SET owner = CASE
    WHEN name = '' OR name IN ('admin', 'editor', 'approver', 'viewer', 'agent', 'member') THEN id
    ELSE name
END;
ALTER TABLE api_keys ALTER COLUMN owner SET NOT NULL;
CREATE INDEX api_keys_owner_idx ON api_keys (tenant_id, owner);
