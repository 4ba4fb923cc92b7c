"""Run Alembic migrations programmatically (the CLI, the embedded start-up and the tests use this).

``HEAD`` names the newest revision, so a start-up can tell with one query that the schema is current
and skip loading Alembic (0.3-0.5 s on every embedded command otherwise); a test checks it against
Alembic's own view of the scripts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
HEAD = "0018"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def timescaledb_usable(conn: Connection) -> bool:
    """Whether the migrations make TimescaleDB objects on this server: the extension is installed in
    the database already, or available and preloaded (``CREATE EXTENSION`` fails without
    ``shared_preload_libraries = 'timescaledb'``, and the schema then stays plain)."""
    if conn.dialect.name != "postgresql":
        return False
    if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first() is not None:
        return True
    if conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")).first() is None:
        return False
    return "timescaledb" in str(conn.execute(text("SHOW shared_preload_libraries")).scalar() or "")


TIMESCALEDB_NOT_PRELOADED = (
    "timescaledb is installed on this server but not in shared_preload_libraries, so price history "
    "uses plain PostgreSQL tables (price_ticks, price_ticks_hourly) and works as it is. To use "
    "TimescaleDB, add shared_preload_libraries = 'timescaledb' to postgresql.conf, restart PostgreSQL "
    "and create the database anew (or migrate its data)."
)


def timescaledb_not_preloaded(conn: Connection) -> bool:
    """The one case where the migrations fall back although TimescaleDB is on the server: available,
    not installed in this database, and not preloaded (``CREATE EXTENSION`` would fail)."""
    if conn.dialect.name != "postgresql":
        return False
    if conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")).first() is None:
        return False
    return not timescaledb_usable(conn)


def plain_because_not_preloaded(url: str) -> bool:
    """`timescaledb_not_preloaded` for a database URL (``cloudarb db upgrade`` prints the note)."""
    if not url.startswith("postgresql"):
        return False
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return timescaledb_not_preloaded(conn)
    finally:
        engine.dispose()


def is_current(engine: Engine) -> bool:
    """Whether the database's schema is at ``HEAD`` (one query; False if it has no schema yet)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
    except SQLAlchemyError:
        return False


def ensure_current(engine: Engine, url: str) -> bool:
    """Upgrade to ``HEAD`` unless already there; returns whether migrations ran."""
    if is_current(engine):
        return False
    upgrade(url)
    return True


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
