"""Write the API's OpenAPI document to frontend/openapi.json (the input of scripts/generate-client.sh).

The document is built from the application factory itself, so the dashboard's generated client can
never drift from the routes. An in-memory SQLite database and no migrations keep this free of any
service or data directory: building the schema needs the routes, not a working database.

Run from the repository root: ``PYTHONPATH=. python scripts/export_openapi.py [output path]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from cloudarb.api.app import create_app
from cloudarb.config import Settings
from cloudarb.context import build_context

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "frontend" / "openapi.json"


def export(output: Path) -> None:
    """Build the app without a scheduler or migrations and write its OpenAPI document as sorted JSON."""
    with tempfile.TemporaryDirectory(prefix="cloudarb-openapi-") as data_dir:
        settings = Settings(
            _env_file=None,
            database_url="sqlite:///:memory:",
            redis_url=None,
            data_dir=Path(data_dir),
            secret_key="openapi-export-only",
            seed_snapshot=False,
        )
        ctx = build_context(settings, prepare=False)
        try:
            document = create_app(settings, ctx=ctx, scheduler=False).openapi()
        finally:
            ctx.close()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    output = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
    export(output)
    sys.stderr.write(f"wrote {output}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
