-- Users: the source of truth for accounts. Portable schema shared with PostgreSQL through
-- sqlx's Any driver: ids are UUID strings, timestamps are epoch milliseconds.
CREATE TABLE users (
    id            TEXT    PRIMARY KEY NOT NULL,
    email         TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- Emails are stored normalized (trimmed, lowercased), so uniqueness is case-insensitive.
CREATE UNIQUE INDEX users_email_key ON users (email);
