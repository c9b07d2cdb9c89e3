-- A full read copies Entra's users a slice of ids at a time, each slice a range compared
-- byte by byte (as the engine sorts ids), whatever the database's collation: this index
-- serves those range reads, as users_by_azure_object_id_bytes serves the directory's.
CREATE INDEX entra_users_by_id_bytes ON entra_users (org_id, id COLLATE "C");
-- The same for the memberships, copied a range of group ids at a time.
CREATE INDEX entra_members_by_group_bytes ON entra_members (org_id, group_id COLLATE "C");
