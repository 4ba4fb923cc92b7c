"""Data-access functions: keyword-only, one module per resource, organization-scoped where owned."""
