"""Alembic environment: always run on a connection that greenlane hands in."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from greenlane.store.models import Base
from greenlane.store.types import UTCDateTime


def _render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render our column types in plain SQLAlchemy, so migrations import nothing of ours."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable from a hand-written alembic.ini
    raise RuntimeError("run migrations through `greenlane db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
    transactional_ddl=True,  # greenlane's SQLite engine issues BEGIN itself, so DDL rolls back
    render_item=_render_item,
)
with context.begin_transaction():
    context.run_migrations()
