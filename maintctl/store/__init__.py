"""The database and maintctl's own tables: opening it, transactions, the lock, who else has a file open,
the database's id, run history, schedules, the outbox, audit rows and the foreign keys that hold a row."""
