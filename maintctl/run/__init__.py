"""The engine: which databases (patterns, shards, worker processes), one run's passes under the lock, the
window of run-all --for and the database its path names."""
