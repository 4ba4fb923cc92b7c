"""CloudArb application: configuration, storage, API, jobs, events and CLI."""
