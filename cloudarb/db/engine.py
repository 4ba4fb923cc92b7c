"""Engines and sessions, created on demand from settings (never at import time)."""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
AFTER_COMMIT = "cloudarb.after_commit"


def after_commit(session: Session, key: str, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's transaction has committed (the latest action per ``key``);
    for work that cannot run inside the transaction, e.g. refreshing a continuous aggregate."""
    session.info.setdefault(AFTER_COMMIT, {})[key] = action


def pending_after_commit(session: Session, key: str) -> Callable[[], None] | None:
    """The action registered under ``key`` in the session's open transaction, if any."""
    pending: Callable[[], None] | None = session.info.get(AFTER_COMMIT, {}).get(key)
    return pending


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _forget_pool_after_fork(db: Database) -> None:
    """A forked child (an RQ work horse) must not reuse the parent's pooled connections: the parent's
    threads are still using them. The child drops the pool without closing the parent's sockets."""
    ref = weakref.ref(db)

    def reset() -> None:
        alive = ref()
        if alive is not None:
            alive.engine.dispose(close=False)

    os.register_at_fork(after_in_child=reset)


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        _forget_pool_after_fork(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error; then runs what was registered
        with ``after_commit`` (only after a commit)."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.info.pop(AFTER_COMMIT, None)
                session.rollback()
                raise
            for action in session.info.pop(AFTER_COMMIT, {}).values():
                try:
                    action()
                except Exception:
                    log.warning("after-commit action failed", exc_info=True)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def has_timescaledb(self) -> bool:
        if self.dialect != "postgresql":
            return False
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first()
        return row is not None

    def dispose(self) -> None:
        self.engine.dispose()
