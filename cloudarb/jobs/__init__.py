"""Jobs: where the application meets the libraries. Bodies take a JobContext (ids only, rows from the database)."""
