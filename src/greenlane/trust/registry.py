"""The participant registry in the database: countries, agencies, nodes and their keys.

Services take a session and never commit: the caller owns the transaction.
The corridor file is loaded into these tables (:func:`sync_corridor`); keys
arrive from the country's own ``greenlane keys`` commands or, for the partner,
as registry updates signed by its root CA (:mod:`greenlane.trust.updates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from greenlane.corridor.agreement import Corridor
from greenlane.store.models import Agency, Country, Node, StoredKey
from greenlane.trust import evidence
from greenlane.trust.keys import KeyState, OwnerKind, RegisteredKey, Role
from greenlane.trust.signers import TrustError


@dataclass(frozen=True, slots=True)
class SyncReport:
    countries: int
    agencies: int
    nodes: int


def _roles(roles: tuple[Role, ...] | list[Role]) -> str:
    return ",".join(sorted({r.value for r in roles}))


def sync_corridor(session: Session, corridor: Corridor) -> SyncReport:
    """Bring the registry in line with the corridor file (adds and updates, never deletes).

    A root certificate already registered is never replaced silently: a
    different one in the file is refused (a new root is a new agreement).
    """
    agencies = nodes = 0
    for code, entry in corridor.countries.items():
        country = session.get(Country, code) or Country(code=code, registry_sequence=0)
        country.name = entry.name
        path = corridor.root_certificate_path(code)
        if path is not None and path.is_file():
            pem = path.read_text(encoding="ascii")
            set_root_certificate(country, x509.load_pem_x509_certificate(pem.encode()))
        session.add(country)
        for agency in entry.agencies:
            row = session.get(Agency, agency.id) or Agency(id=agency.id)
            row.country, row.name, row.roles = code, agency.name, _roles(agency.roles)
            session.add(row)
            agencies += 1
        for node in entry.nodes:
            nrow = session.get(Node, node.id) or Node(id=node.id)
            nrow.country, nrow.endpoint, nrow.tls_identity = code, node.endpoint, node.tls_identity
            session.add(nrow)
            nodes += 1
    evidence.append(
        session,
        [
            evidence.Event(
                evidence.Kind.CONFIGURATION_CHANGED,
                f"corridor:{corridor.id}",
                {"corridor_sha256": corridor.digest(), "countries": sorted(corridor.countries)},
            )
        ],
        at=datetime.now(UTC),
    )
    session.flush()
    return SyncReport(len(corridor.countries), agencies, nodes)


def set_root_certificate(country: Country, certificate: x509.Certificate) -> None:
    pem = certificate.public_bytes(Encoding.PEM).decode("ascii")
    if country.root_certificate is not None and country.root_certificate.strip() != pem.strip():
        raise TrustError(
            f"country {country.code} already has another root CA certificate registered",
            code="trust.root-mismatch",
        )
    country.root_certificate = pem


def root_certificate(session: Session, country: str) -> x509.Certificate:
    row = session.get(Country, country)
    if row is None:
        raise TrustError(f"country {country} is not in the corridor", code="trust.unknown-country")
    if row.root_certificate is None:
        raise TrustError(
            f"country {country} has no root CA certificate registered", code="trust.no-root"
        )
    return x509.load_pem_x509_certificate(row.root_certificate.encode("ascii"))


def add_country(session: Session, code: str, name: str) -> Country:
    country = session.get(Country, code)
    if country is None:
        country = Country(code=code, name=name, registry_sequence=0)
        session.add(country)
        session.flush()
    return country


def add_agency(session: Session, *, id: str, country: str, name: str, roles: list[Role]) -> Agency:
    _require_new(session, id)
    _require_country(session, country)
    agency = Agency(id=id, country=country, name=name, roles=_roles(roles))
    session.add(agency)
    session.flush()
    return agency


def add_node(
    session: Session, *, id: str, country: str, endpoint: str, tls_identity: str | None
) -> Node:
    _require_new(session, id)
    _require_country(session, country)
    node = Node(id=id, country=country, endpoint=endpoint, tls_identity=tls_identity)
    session.add(node)
    session.flush()
    return node


def _require_new(session: Session, id: str) -> None:
    if session.get(Agency, id) is not None or session.get(Node, id) is not None:
        raise TrustError(f"participant {id!r} already exists", code="trust.participant-exists")


def _require_country(session: Session, country: str) -> None:
    if session.get(Country, country) is None:
        raise TrustError(f"country {country} is not in the corridor", code="trust.unknown-country")


@dataclass(frozen=True, slots=True)
class Participant:
    id: str
    kind: OwnerKind
    country: str
    name: str
    roles: frozenset[Role]
    endpoint: str | None = None
    tls_identity: str | None = None


def participants(session: Session, country: str | None = None) -> list[Participant]:
    """Every agency and node, by country then id."""
    found = [_agency(a) for a in session.scalars(select(Agency))]
    found += [_node(n) for n in session.scalars(select(Node))]
    if country is not None:
        found = [p for p in found if p.country == country]
    return sorted(found, key=lambda p: (p.country, p.kind.value, p.id))


def participant(session: Session, id: str) -> Participant | None:
    agency = session.get(Agency, id)
    if agency is not None:
        return _agency(agency)
    node = session.get(Node, id)
    return _node(node) if node is not None else None


def _agency(row: Agency) -> Participant:
    roles = frozenset(Role(r) for r in row.roles.split(",") if r)
    return Participant(row.id, OwnerKind.AGENCY, row.country, row.name, roles)


def _node(row: Node) -> Participant:
    return Participant(
        row.id, OwnerKind.NODE, row.country, row.id, frozenset(), row.endpoint, row.tls_identity
    )


# --- keys ------------------------------------------------------------------------------------


_KEY_QUERY = (
    select(
        StoredKey.key_id,
        StoredKey.country,
        StoredKey.owner_id,
        StoredKey.owner_kind,
        StoredKey.certificate,
        StoredKey.state,
        StoredKey.published_at,
        StoredKey.activated_at,
        StoredKey.retired_at,
        StoredKey.revoked_at,
        Agency.roles,
    )
    .outerjoin(Agency, Agency.id == StoredKey.owner_id)
    .where(StoredKey.key_id == bindparam("key_id"))
)
"""Built once: making the statement anew on every lookup costs as much as running it."""


class DatabaseKeys:
    """Key lookups for verification, from the registry tables (one session's view)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def key(self, key_id: str) -> RegisteredKey | None:
        """The key as its row stands now: one query (the key and its agency's roles).

        Read afresh on every call, so a revocation counts from the next lookup;
        only turning the row into a RegisteredKey is remembered, by the row's
        whole content (a changed row is a new entry).
        """
        found = self.session.execute(_KEY_QUERY, {"key_id": key_id}).first()
        return None if found is None else _registered_from(tuple(found))


@lru_cache(maxsize=256)
def _registered_from(values: tuple[Any, ...]) -> RegisteredKey:
    """A key row's values (and its agency's roles, None for a node) as a RegisteredKey.

    Cached: parsing the certificate costs more than reading the row.
    """
    (kid, country, owner, kind, pem, state, published, activated, retired, revoked, roles) = values
    return RegisteredKey(
        key_id=kid,
        country=country,
        owner=owner,
        owner_kind=OwnerKind(kind),
        roles=frozenset(Role(r) for r in (roles or "").split(",") if r),
        certificate=x509.load_pem_x509_certificate(pem.encode("ascii")),
        state=KeyState(state),
        published_at=published,
        activated_at=activated,
        retired_at=retired,
        revoked_at=revoked,
    )


def keys(
    session: Session, *, country: str | None = None, owner: str | None = None
) -> list[StoredKey]:
    query = select(StoredKey).order_by(
        StoredKey.country, StoredKey.owner_id, StoredKey.published_at
    )
    if country is not None:
        query = query.where(StoredKey.country == country)
    if owner is not None:
        query = query.where(StoredKey.owner_id == owner)
    return list(session.scalars(query))


_ACTIVE_QUERY = (
    select(StoredKey)
    .where(StoredKey.owner_id == bindparam("owner"), StoredKey.state == KeyState.ACTIVE.value)
    .order_by(StoredKey.country, StoredKey.owner_id, StoredKey.published_at)
)


def signing_key(session: Session, owner: str) -> StoredKey:
    """The owner's one active key: the only one that signs."""
    active = list(session.scalars(_ACTIVE_QUERY, {"owner": owner}))
    if not active:
        raise TrustError(f"{owner} has no active signing key", code="trust.no-signing-key")
    return active[-1]


def record_time_check(key: RegisteredKey, recorded_at: datetime) -> None:
    """Refuse a key that could not vouch for something recorded at ``recorded_at``."""
    reason = key.refusal_at(recorded_at)
    if reason is not None:
        code = "trust.key-revoked" if key.revoked_at is not None else "trust.key-not-valid"
        raise TrustError(reason, code=code)
