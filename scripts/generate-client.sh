#!/usr/bin/env bash
# Regenerate the dashboard's typed API client from the server's OpenAPI document.
#   1. scripts/export_openapi.py builds the FastAPI app (in-memory SQLite, no services) and writes
#      frontend/openapi.json;
#   2. openapi-typescript turns it into frontend/src/api/schema.d.ts, the types that openapi-fetch
#      (frontend/src/api/client.ts) checks every path, parameter and body against.
# Both outputs are committed, so building the dashboard never needs Python.
# Usage: scripts/generate-client.sh   (PYTHON=... to pick the interpreter; default .venv or python3)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

PYTHONPATH=. "$PYTHON" scripts/export_openapi.py frontend/openapi.json
cd frontend
if [ ! -d node_modules ]; then
  npm ci
fi
npx --no-install openapi-typescript openapi.json --default-non-nullable false -o src/api/schema.d.ts
