"""maintctl: housekeeping for the Core memory assistant's SQLite database."""

__version__ = "0.1.0"
