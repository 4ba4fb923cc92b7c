"""Pricing ingestion: provider APIs and catalogs -> normalized price quotes."""
