"""Pricing ingestion: provider APIs and catalogs -> normalized price quotes.

Public entry points (import from the submodules; this package imports nothing heavy):
- ingestion.schemas.PriceQuote: the one quote schema.
- ingestion.gpu_specs.GPU_MODELS / gpu_families: the GPU identity table (memory, form factor,
  data-sheet TFLOPS and bandwidth, aliases); ingestion.gpus.resolve_gpu: provider spellings.
- ingestion.gpu_query.resolve_gpu_request / resolve_gpu_names: names people type ('a100', 'H100:8').
- ingestion.datasheet.check_offer / check_quote: model, memory per GPU and price against the table.
- ingestion.conventions.CONVENTIONS: each catalog source's conventions as data.
- ingestion.catalogs.load_catalog -> CatalogLoad (offers, quarantined rows, counts); load_snapshot /
  write_snapshot; python -m ingestion.catalog_report for the per-file figures.
- ingestion.providers.PROVIDERS / create_provider(key, config=...): live provider clients.
- ingestion.rows.QUOTE_COLUMNS / quote_rows: quotes as tuples for bulk writes.
- ingestion.simulator.MarketSimulator / MarketConfig: seeded synthetic market ticks.
- ingestion.errors.IngestionError: root of every error raised here.
"""
