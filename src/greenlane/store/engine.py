"""Engines and sessions for the configured database.

SQLite runs in WAL mode with foreign keys on and a busy timeout, and with
SQLAlchemy (not the sqlite3 module) issuing BEGIN, so that savepoints and
transactional DDL behave as on PostgreSQL. Callers own transactions: nothing
here commits.
"""

from __future__ import annotations

import os
import sqlite3
import threading
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

    writers = None if in_memory else _writers_of(str(parsed.database))
    timeout = sqlite_busy_timeout_ms / 1000

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE: take the write lock at BEGIN, so a transaction that reads and
        # then writes waits its turn (busy timeout) instead of failing at the write
        # when another connection committed in between (SQLITE_BUSY_SNAPSHOT).
        if writers is None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        dbapi_connection = connection.connection.dbapi_connection
        writers.acquire(dbapi_connection, timeout)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writers.settle(dbapi_connection)
            raise

    if writers is not None:
        _settle_after(engine, writers)
    return engine


class _Writers:
    """This process's turn at one SQLite file's write lock, waited for on a lock, not by polling.

    Every transaction begins IMMEDIATE, so the SQLite lock is held by one
    connection at a time; a connection that finds it taken retries on SQLite's
    busy handler, which sleeps up to 100 ms between tries. With several threads
    of one process writing, a waiter then loses the lock to one that came later,
    again and again, until its busy timeout ends in "database is locked", while
    the lock stands idle between the tries. Here threads of this process queue
    on a lock instead, taken just before BEGIN and given back right after the
    COMMIT or ROLLBACK, so it is held exactly while SQLite's is. Other processes
    still wait on SQLite's busy handler. A thread that does not get its turn
    within the busy timeout goes on to BEGIN IMMEDIATE as before, which then
    fails as before if the lock is still taken.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: Any = None
        self._thread: int | None = None

    def acquire(self, dbapi_connection: Any, timeout: float) -> None:
        if self._thread == threading.get_ident():
            return  # held by this thread on another connection: waiting would wait for itself
        if self._lock.acquire(timeout=timeout):
            self._holder, self._thread = dbapi_connection, threading.get_ident()

    def settle(self, dbapi_connection: Any) -> None:
        """Give the turn back if ``dbapi_connection`` holds it and its transaction is over."""
        if self._holder is not dbapi_connection:
            return
        try:
            busy = dbapi_connection.in_transaction
        except sqlite3.ProgrammingError:  # closed: its transaction ended with it
            busy = False
        if not busy:
            self._holder = self._thread = None
            self._lock.release()


_writers_lock = threading.Lock()
_writers: dict[str, _Writers] = {}


def _writers_of(database: str) -> _Writers:
    """One turn per database file in this process, whichever engines open it."""
    with _writers_lock:
        return _writers.setdefault(os.path.realpath(database), _Writers())


def _settle_after(engine: Engine, writers: _Writers) -> None:
    """Give the turn back once a COMMIT or ROLLBACK has run, or the connection is dropped.

    SQLAlchemy's commit and rollback events come before the statement, so the
    dialect's own calls are wrapped (this engine's dialect only).
    """
    dialect = engine.dialect
    commit, rollback, close = dialect.do_commit, dialect.do_rollback, dialect.do_close

    def raw(connection: Any) -> Any:
        return getattr(connection, "dbapi_connection", connection)  # the pool hands a proxy

    def do_commit(connection: Any) -> None:
        try:
            commit(connection)
        finally:
            writers.settle(raw(connection))

    def do_rollback(connection: Any) -> None:
        try:
            rollback(connection)
        finally:
            writers.settle(raw(connection))

    def do_close(connection: Any) -> None:
        try:
            close(connection)
        finally:
            writers.settle(raw(connection))

    dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]
    dialect.do_close = do_close  # type: ignore[method-assign,assignment]


def engine_from_settings(settings: Settings) -> Engine:
    return make_engine(
        settings.database_url,
        echo=settings.database_echo,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
