-- How many items each user's library holds, for `library.max_items_per_user`. Every insert and
-- delete of items moves it in the same transaction, through an UPDATE guarded by the quota, so
-- the quota holds exactly under concurrent writers on every backend (the row lock serializes one
-- owner's writers on PostgreSQL; SQLite serializes all writers). A missing row is made from a
-- count of the owner's items.
CREATE TABLE library_usage (
    owner_id TEXT   PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    items    BIGINT NOT NULL
);
