"""Pricing ingestion in the application: provider schedules, the refresh job, the bulk write path,
price history and price-change events. Provider APIs themselves live in the ``ingestion`` library."""
