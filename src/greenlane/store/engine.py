"""Engines and sessions for the configured database.

SQLite runs in WAL mode with foreign keys on and a busy timeout, and with
SQLAlchemy (not the sqlite3 module) issuing BEGIN, so that savepoints and
transactional DDL behave as on PostgreSQL. Callers own transactions: nothing
here commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from greenlane.settings import Settings


def make_engine(url: str, *, echo: bool = False, sqlite_busy_timeout_ms: int = 5000) -> Engine:
    """An engine for ``url`` with the pragmas and options greenlane relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, echo=echo, pool_pre_ping=True)

    engine = create_engine(
        parsed,
        echo=echo,
        connect_args={"timeout": sqlite_busy_timeout_ms / 1000, "check_same_thread": False},
    )
    in_memory = parsed.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy issues BEGIN itself, below
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(sqlite_busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE: take the write lock at BEGIN, so a transaction that reads and
        # then writes waits its turn (busy timeout) instead of failing at the write
        # when another connection committed in between (SQLITE_BUSY_SNAPSHOT).
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def engine_from_settings(settings: Settings) -> Engine:
    return make_engine(
        settings.database_url,
        echo=settings.database_echo,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
