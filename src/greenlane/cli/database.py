"""One transaction per command: commit when it succeeds, nothing written when it fails."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from greenlane.errors import GreenlaneError
from greenlane.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session


def migrated_engine(settings: Settings) -> Engine:
    """An engine on the configured database, which must be at the newest migration."""
    from greenlane.store import migrate
    from greenlane.store.engine import engine_from_settings

    engine = engine_from_settings(settings)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    if current != head:
        raise GreenlaneError(
            f"the database is at revision {current}, the code at {head}: "
            "run `greenlane db upgrade`",
            code="db.not-migrated",
        )
    return engine


@contextmanager
def transaction(settings: Settings) -> Iterator[Session]:
    """A session on the configured database, which must be at the newest migration."""
    from greenlane.store.engine import session_factory

    with session_factory(migrated_engine(settings))() as session, session.begin():
        yield session
