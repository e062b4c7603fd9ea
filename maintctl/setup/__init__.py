"""init-db (the schema, demo data) and doctor's installation checks."""
