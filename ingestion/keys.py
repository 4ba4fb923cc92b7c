"""The provider keys, importable without importing any provider client (or its SDK).

The API process lists and validates providers with this; ``ingestion.providers.PROVIDERS`` maps the
same keys to their clients (a test keeps the two equal).
"""

from __future__ import annotations

PROVIDER_KEYS: tuple[str, ...] = ("aws", "azure", "gcp", "lambda", "local", "runpod", "tensordock", "vast")
