-- Library items: owned by a user, deleted with them. Portable schema shared with the other
-- backend through sqlx's Any driver: ids are UUID strings, timestamps epoch milliseconds,
-- tags a JSON array in TEXT.
CREATE TABLE library_items (
    id               TEXT    PRIMARY KEY NOT NULL,
    owner_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL CHECK (kind IN ('song', 'album', 'playlist', 'podcast')),
    title            TEXT    NOT NULL,
    artist           TEXT,
    album            TEXT,
    duration_seconds BIGINT,
    tags             TEXT    NOT NULL DEFAULT '[]',
    -- Lowercased title and artist, what `q` searches (the same folding on every backend).
    search           TEXT    NOT NULL,
    -- The highest lock fencing token a write carried: an update with an older one changes nothing.
    fence            BIGINT  NOT NULL DEFAULT 0,
    -- Bumped by every write: an update applies only to the version it read (no lost updates).
    version          BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);

-- A user's library, newest first (the list order).
CREATE INDEX library_items_owner ON library_items (owner_id, created_at DESC, id DESC);
