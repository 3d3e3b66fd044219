"""One node's running context: who it is, its database, its keys and its peers.

Built once at start (``greenlane serve``, the tests, the benchmark) from the
settings and the corridor file, and handed to every exchange service. It holds
no per-request state; sessions are opened by the callers, which own their
transactions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from greenlane.corridor.agreement import Corridor, NodeEntry
from greenlane.errors import ConfigurationError
from greenlane.exchange.envelope import DocumentType, document_types
from greenlane.exchange.metrics import Metrics
from greenlane.settings import Settings
from greenlane.trust import lifecycle, registry
from greenlane.trust.signers import Signer

if TYPE_CHECKING:
    from greenlane.trust.lifecycle import KeyProvider

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class NodeContext:
    """Everything the exchange services need to act as ``node_id``."""

    settings: Settings
    corridor: Corridor
    node_id: str
    engine: Engine
    sessions: sessionmaker[Session]
    """Sessions that write (on SQLite, each transaction holds the write lock)."""
    reads: sessionmaker[Session]
    """Sessions that only read: they never wait for a writer."""
    provider: KeyProvider
    clock: Clock = utc_now
    types: Mapping[str, DocumentType] = field(default_factory=document_types)
    metrics: Metrics = field(default_factory=Metrics)
    wake: threading.Event = field(default_factory=threading.Event)
    """Set when the outbox has something new, so the delivery worker sends at once."""
    _signers: dict[str, Signer] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def country(self) -> str:
        country = self.corridor.country_of(self.node_id)
        assert country is not None  # checked by build_context
        return country

    @property
    def entry(self) -> NodeEntry:
        return self.peer(self.node_id)

    def peer(self, node_id: str) -> NodeEntry:
        """The corridor entry of a node (ours or a partner's); ConfigurationError if none."""
        for country in self.corridor.countries.values():
            for node in country.nodes:
                if node.id == node_id:
                    return node
        raise ConfigurationError(f"no node {node_id!r} in the corridor", code="config.no-node")

    def node_country(self, node_id: str) -> str | None:
        """The country of a node id, None for one the corridor does not list as a node."""
        for code, country in self.corridor.countries.items():
            if any(n.id == node_id for n in country.nodes):
                return code
        return None

    def partner_nodes(self) -> list[NodeEntry]:
        """The other countries' nodes: who we send to and receive from."""
        return [
            node
            for code, country in self.corridor.countries.items()
            if code != self.country
            for node in country.nodes
        ]

    def node_for_country(self, country: str) -> NodeEntry:
        """The node that receives for ``country``: the first it lists."""
        entry = self.corridor.countries.get(country)
        if entry is None or not entry.nodes:
            raise ConfigurationError(
                f"the corridor has no node for country {country!r}", code="config.no-node"
            )
        return entry.nodes[0]

    def signer(self, session: Session, owner: str) -> Signer:
        """The signer of ``owner``'s active key, loaded once per key (reading a key is slow).

        Looked up by the active key's id every time, so an activated rotation or
        a revocation takes effect on the next signature without a restart.
        """
        row = registry.signing_key(session, owner)
        with self._lock:
            cached = self._signers.get(row.key_id)
        if cached is not None:
            return cached
        signer = lifecycle.signer_for(session, owner, {self.provider.name: self.provider})
        with self._lock:
            self._signers[row.key_id] = signer
        return signer


def build_context(
    settings: Settings,
    corridor: Corridor,
    node_id: str,
    *,
    engine: Engine | None = None,
    clock: Clock = utc_now,
) -> NodeContext:
    """A context for ``node_id`` on the configured database (which must be migrated)."""
    from greenlane.store.engine import (
        engine_from_settings,
        read_session_factory,
        session_factory,
    )

    if not any(n.id == node_id for c in corridor.countries.values() for n in c.nodes):
        raise ConfigurationError(
            f"{node_id!r} is not a node of corridor {corridor.id}", code="config.no-node"
        )
    engine = engine or engine_from_settings(settings)
    return NodeContext(
        settings=settings,
        corridor=corridor,
        node_id=node_id,
        engine=engine,
        sessions=session_factory(engine),
        reads=read_session_factory(engine),
        provider=lifecycle.provider_from_settings(settings),
        clock=clock,
    )


def resolve_node(corridor: Corridor, name: str) -> str:
    """A node id from what the operator typed: a node id, or a country with one node."""
    for code, country in corridor.countries.items():
        if any(n.id == name for n in country.nodes):
            return name
        if code == name.upper() and country.nodes:
            if len(country.nodes) > 1:
                ids = ", ".join(n.id for n in country.nodes)
                raise ConfigurationError(
                    f"country {code} has several nodes ({ids}): name one", code="config.no-node"
                )
            return country.nodes[0].id
    raise ConfigurationError(
        f"{name!r} is neither a node nor a country of corridor {corridor.id}",
        code="config.no-node",
    )
