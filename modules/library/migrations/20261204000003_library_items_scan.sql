-- Exports page through a library in id order (keyset: `id > last`); without this index each
-- page sorted the owner's whole library again.
CREATE INDEX library_items_owner_id ON library_items (owner_id, id);
