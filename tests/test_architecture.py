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


def _strongly_connected(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the groups of two or more modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_strongly_connected_finds_cycles() -> None:
    """The cycle finder itself: a 3-cycle and a 2-cycle found, a chain and a self-free DAG not."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}, "g": set()}
    assert sorted(_strongly_connected(sorted(edges), edges)) == [["a", "b", "c"], ["d", "e"]]
    assert _strongly_connected(["x", "y"], {"x": {"y"}, "y": set()}) == []


def test_no_import_cycles() -> None:
    """No module of the four packages imports itself back, directly or through others; nor does any
    part of the application (cloudarb.<part>) through the other parts. Function-level imports count;
    imports under ``TYPE_CHECKING`` do not (they never run)."""
    import grimp

    graph = grimp.build_graph("cloudarb", "optimizer", "forecasting", "ingestion", exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    edges = {m: {x for x in graph.find_modules_directly_imported_by(m) if x in graph.modules} for m in modules}
    assert _strongly_connected(modules, edges) == [], "import cycles between modules"

    def part(module: str) -> str:
        pieces = module.split(".")
        return ".".join(pieces[:2]) if pieces[0] == "cloudarb" else pieces[0]

    parts: dict[str, set[str]] = {}
    for m, targets in edges.items():
        parts.setdefault(part(m), set()).update(part(t) for t in targets if part(t) != part(m))
    assert _strongly_connected(sorted(parts), parts) == [], "import cycles between parts of the application"


HEAVY = ("ortools", "pulp", "prophet", "cmdstanpy", "sklearn", "statsmodels", "pandas", "numpy", "scipy",
         "fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "redis", "rq", "boto3", "docker",
         "optimizer.solver", "forecasting.models")


def test_cli_client_commands_load_no_engine_or_web_framework() -> None:
    """`cloudarb ... --server URL` (the CLI as a client) loads no solver, forecasting engine, web
    framework, database layer or SDK: a light install can run it. The command really runs (against a
    port where nothing listens) and fails cleanly."""
    code = (
        "import sys\n"
        "from cloudarb.cli import app\n"
        "try:\n"
        "    app(['offers', '--server', 'http://127.0.0.1:9', '--json'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "except Exception as exc:\n"
        "    print('raised', type(exc).__name__, exc)\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cannot reach" in result.stdout + result.stderr, "the client command ran and reported the refused connection"


def test_base_distribution_is_light() -> None:
    """Installing cloudarb without extras brings only the client's and the agent's libraries; the
    server, solvers, forecasting and SDKs come with extras, and `all` has them all."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower() for r in requirements}

    assert names(project["dependencies"]) <= {"pydantic", "pydantic-settings", "httpx", "typer", "rich",
                                             "websockets", "tenacity", "pyyaml"}
    extras = project["optional-dependencies"]
    assert {"ortools", "pulp"} <= names(extras["solve"])
    assert {"prophet", "scikit-learn", "statsmodels"} <= names(extras["forecast"])
    assert {"fastapi", "sqlalchemy", "rq", "redis"} <= names(extras["server"])
    assert "boto3" in names(extras["aws"])
    assert {"nvidia-ml-py", "docker"} <= names(extras["agent"])
    assert "kubernetes" in names(extras["deploy"])
    assert extras["all"] == ["cloudarb[server,solve,forecast,aws,deploy,agent]"]


def test_migration_head_constant_matches_the_scripts() -> None:
    """`cloudarb.db.migrate.HEAD` (used to skip Alembic when the schema is current) is the scripts' head."""
    from alembic.script import ScriptDirectory

    from cloudarb.db import migrate

    assert ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head() == migrate.HEAD
