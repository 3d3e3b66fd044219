"""Engines and sessions for the configured database.

SQLite runs in WAL mode with foreign keys on and a busy timeout, and with
SQLAlchemy (not the sqlite3 module) issuing BEGIN, so that savepoints and
transactional DDL behave as on PostgreSQL. Writing sessions begin IMMEDIATE,
reading ones (and bare connections) DEFERRED. Callers own transactions: nothing
here commits.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from greenlane.settings import Settings

WRITER = "greenlane_writer"
"""Execution option of the connections that write (see :func:`session_factory`)."""


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
        # Writers (sessions from session_factory) begin IMMEDIATE: they take the write
        # lock at BEGIN, so a transaction that reads and then writes waits its turn
        # instead of failing at its first write when another connection committed in
        # between (SQLITE_BUSY_SNAPSHOT). Readers begin DEFERRED and never wait for
        # the lock: WAL gives them a snapshot of the last commit.
        if not connection.get_execution_options().get(WRITER):
            connection.exec_driver_sql("BEGIN")
            return
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
    """This process's turn at one SQLite file's write lock, waited for in a queue, not by polling.

    Every transaction begins IMMEDIATE, so the SQLite lock is held by one
    connection at a time; a connection that finds it taken retries on SQLite's
    busy handler, which sleeps up to 100 ms between tries. With several threads
    of one process writing, a waiter then loses the lock to one that came later,
    again and again, until its busy timeout ends in "database is locked", while
    the lock stands idle between the tries. Here threads of this process queue
    first come, first served: a turn is taken just before BEGIN and handed to
    the next in line right after the COMMIT or ROLLBACK, so it is held exactly
    while SQLite's lock is. Other processes still wait on SQLite's busy handler.
    A thread whose turn has not come within the busy timeout goes on to BEGIN
    IMMEDIATE as before, which then fails as before if the lock is still taken.
    """

    def __init__(self, database: str) -> None:
        self._lock_path = database + ".writer-lock"
        self._lock_file: Any = None
        self._mutex = threading.Lock()
        self._queue: deque[threading.Lock] = deque()
        self._taken = False
        self._holder: Any = None
        self._thread: int | None = None

    def acquire(self, dbapi_connection: Any, timeout: float) -> None:
        me = threading.get_ident()
        if self._thread == me:
            return  # held by this thread on another connection: waiting would wait for itself
        with self._mutex:
            if not self._taken:
                self._taken = True
                self._holder, self._thread = dbapi_connection, me
                self._between_processes(fcntl.LOCK_EX)
                return
            waiter = threading.Lock()
            waiter.acquire()
            self._queue.append(waiter)
        handed = waiter.acquire(timeout=timeout)
        if not handed:
            with self._mutex:
                if waiter in self._queue:
                    self._queue.remove(waiter)
                    return  # gave up waiting: BEGIN IMMEDIATE on SQLite's busy handler
                # handed over just as the wait ran out: the turn is ours
        self._holder, self._thread = dbapi_connection, me
        self._between_processes(fcntl.LOCK_EX)

    def _between_processes(self, operation: int) -> None:
        """Take or give back this process's turn among processes (``greenlane serve
        --workers N``, a CLI command beside a node): a file lock, whose waiter the
        kernel wakes the moment it is released, where SQLite's busy handler would
        sleep up to 100 ms between tries. Only the thread holding this process's
        turn calls it, so one descriptor per process is enough."""
        try:
            if self._lock_file is None:
                self._lock_file = Path(self._lock_path).open("a+b")  # noqa: SIM115
            fcntl.flock(self._lock_file, operation)
        except OSError:  # a read-only folder: SQLite's own locking still holds
            pass

    def settle(self, dbapi_connection: Any) -> None:
        """Hand the turn on if ``dbapi_connection`` holds it and its transaction is over."""
        if self._holder is not dbapi_connection:
            return
        try:
            busy = dbapi_connection.in_transaction
        except sqlite3.ProgrammingError:  # closed: its transaction ended with it
            busy = False
        if busy:
            return
        with self._mutex:
            self._holder = self._thread = None
            self._between_processes(fcntl.LOCK_UN)
            if self._queue:
                self._queue.popleft().release()  # the next in line holds it now
            else:
                self._taken = False


_writers_lock = threading.Lock()
_writers: dict[str, _Writers] = {}


def _writers_of(database: str) -> _Writers:
    """One turn per database file in this process, whichever engines open it."""
    with _writers_lock:
        path = os.path.realpath(database)
        if path not in _writers:
            _writers[path] = _Writers(path)
        return _writers[path]


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
    """Sessions that may write: on SQLite each transaction takes the write lock at BEGIN."""
    return sessionmaker(bind=engine.execution_options(**{WRITER: True}), expire_on_commit=False)


def read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that only read: on SQLite they never wait for (or hold up) a writer."""
    return sessionmaker(bind=engine, expire_on_commit=False)
