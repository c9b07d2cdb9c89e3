-- A full read plans the tenant a slice of Entra ids at a time and reads the directory users
-- linked to each slice's range. The ranges compare ids byte by byte (as the engine sorts
-- them), whatever the database's collation: this index serves those range reads.
CREATE INDEX users_by_azure_object_id_bytes ON users (org_id, azure_object_id COLLATE "C")
    WHERE azure_object_id IS NOT NULL;
