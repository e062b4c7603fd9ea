"""Putting a backup back in the database's place: restore's checks and decisions, and the replacement."""
