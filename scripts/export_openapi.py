"""Write the API's OpenAPI document to frontend/openapi.json (the input of scripts/generate-client.sh).

The document is built from the application factory itself, so the dashboard's generated client can
never drift from the routes. An in-memory SQLite database and no migrations keep this free of any
service or data directory: building the schema needs the routes, not a working database.

Run from the repository root: ``PYTHONPATH=. python scripts/export_openapi.py [--check] [output path]``.
``--check`` writes nothing and exits 1 when the committed document differs from the app's (for CI:
it catches an API change that was not followed by scripts/generate-client.sh).
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


def render() -> str:
    """Build the app without a scheduler or migrations and return its OpenAPI document as sorted JSON."""
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
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    args = argv[1:]
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    output = Path(paths[0]) if paths else DEFAULT_OUTPUT
    text = render()
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            sys.stderr.write(f"{output} is out of date: run scripts/generate-client.sh\n")
            return 1
        sys.stderr.write(f"{output} is current\n")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    sys.stderr.write(f"wrote {output}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
