-- +goose Up
-- secret_imports: the folder's secrets are read together with the shared
-- secrets of (import_env, import_path); higher positions win over lower ones.
CREATE TABLE secret_imports (
    id              TEXT PRIMARY KEY,
    folder_id       TEXT NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    import_env_id   TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    import_path     TEXT NOT NULL,
    position        INTEGER NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (folder_id, import_env_id, import_path)
);
CREATE INDEX secret_imports_folder ON secret_imports(folder_id, position);

CREATE TABLE secret_tags (
    id                     TEXT PRIMARY KEY,
    project_id             TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    slug                   TEXT NOT NULL,
    name                   TEXT NOT NULL,
    color                  TEXT NOT NULL DEFAULT '',
    created_by             TEXT NOT NULL,
    created_by_actor_type  TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    UNIQUE (project_id, slug)
);

CREATE TABLE secret_tag_links (
    secret_id  TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    tag_id     TEXT NOT NULL REFERENCES secret_tags(id) ON DELETE CASCADE,
    PRIMARY KEY (secret_id, tag_id)
);
CREATE INDEX secret_tag_links_tag ON secret_tag_links(tag_id);

-- +goose Down
DROP TABLE secret_tag_links;
DROP TABLE secret_tags;
DROP TABLE secret_imports;
