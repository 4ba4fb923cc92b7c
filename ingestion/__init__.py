"""Pricing ingestion: provider APIs and catalogs -> normalized price quotes.

Public entry points (import from the submodules; this package imports nothing heavy):
- ingestion.schemas.PriceQuote: the one quote schema.
- ingestion.gpus.resolve_gpu / GPU_MODELS: canonical GPU names and VRAM.
- ingestion.catalogs.load_skypilot_vms / load_gcp_pricing_table / load_snapshot / write_snapshot.
- ingestion.providers.PROVIDERS / create_provider(key, config=...): live provider clients.
- ingestion.rows.QUOTE_COLUMNS / quote_rows: quotes as tuples for bulk writes.
- ingestion.simulator.MarketSimulator / MarketConfig: seeded synthetic market ticks.
- ingestion.errors.IngestionError: root of every error raised here.
"""
