"""The import rules of ARCHITECTURE.md, checked on every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    """import-linter: libraries never import the app nor each other; the API imports no solvers."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command(['--config', 'pyproject.toml', '--no-cache']))"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def test_api_process_loads_no_heavy_engines() -> None:
    """Importing and building the API app loads no solver, forecaster, provider SDK or docker."""
    code = (
        "import sys; from cloudarb.config import Settings; from cloudarb.api.app import create_app; "
        "create_app(Settings(_env_file=None, database_url='sqlite://', seed_snapshot=False), scheduler=False); "
        "heavy = [m for m in ('ortools', 'pulp', 'prophet', 'sklearn', 'statsmodels', 'boto3', 'docker', "
        "'cloudarb.optimize.jobs', 'optimizer.solver') if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_packages_type_check_strictly() -> None:
    """mypy --strict (configured in pyproject.toml) on the four packages."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "cloudarb", "optimizer", "ingestion", "forecasting"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
