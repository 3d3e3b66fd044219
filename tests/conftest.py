"""Fixtures shared by the whole suite: the corpus, settings, and databases on both backends.

Storage tests take the ``engine`` or ``session`` fixture and so run twice: on
SQLite and on a real PostgreSQL server that the harness starts for the run
(``GREENLANE_TEST_POSTGRES_URL`` points at an existing one instead). Each test
runs inside a transaction that is rolled back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from greenlane.store import migrate
from greenlane.store.engine import make_engine

from . import pg_harness

settings.register_profile("default", max_examples=150, deadline=None)
settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GREENLANE_SHARED_DIR", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real material in ../shared/corpus; the suite refuses to run without it."""
    if not (CORPUS / "SOURCES.md").is_file():
        pytest.fail(f"the corpus is missing at {CORPUS} (set GREENLANE_SHARED_DIR)")
    return CORPUS


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own GREENLANE_* settings."""
    for name in list(os.environ):
        if name.startswith("GREENLANE_") and not name.startswith(
            ("GREENLANE_TEST_", "GREENLANE_SHARED_DIR")
        ):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    existing = os.environ.get("GREENLANE_TEST_POSTGRES_URL")
    if existing:
        yield existing
        return
    try:
        cluster = pg_harness.start()
    except pg_harness.PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL is required for the storage tests: {exc}")
    try:
        yield cluster.create_database("greenlane_test")
    finally:
        cluster.stop()


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An engine on a database migrated to head, once per backend per run."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    migrate.upgrade(engine)
    return engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()
