"""The participant registry, our own keys' lifecycle, and registry updates between countries.

Our side is the ``session`` fixture (SQLite and PostgreSQL); the partner is a
second database, so an update travels as bytes from one registry to the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from greenlane.corridor.agreement import Corridor, load_corridor
from greenlane.errors import ConfigurationError
from greenlane.store import migrate
from greenlane.store.engine import make_engine
from greenlane.store.models import Country, RegistryUpdate, StoredKey
from greenlane.trust import lifecycle, pki, registry
from greenlane.trust.keys import KeyState, OwnerKind
from greenlane.trust.lifecycle import RootCA, SoftwareProvider
from greenlane.trust.signers import SoftwareSigner, TrustError
from greenlane.trust.updates import Change, apply_update, issue_update
from tests.trust.corridors import CORRIDOR, write_corridor

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def corridor(tmp_path: Path) -> Corridor:
    return load_corridor(write_corridor(tmp_path))


@pytest.fixture
def az_root(tmp_path: Path) -> RootCA:
    return lifecycle.create_root_ca(tmp_path / "keys", "AZ", "Azerbaijan", "pass phrase", T0)


@pytest.fixture
def provider(tmp_path: Path) -> SoftwareProvider:
    return SoftwareProvider(tmp_path / "keys", "pass phrase")


@pytest.fixture
def partner(tmp_path: Path, corridor: Corridor, az_root: RootCA) -> Iterator[Session]:
    """The Russian node's registry: the corridor loaded, AZ's root pinned."""
    engine = make_engine(f"sqlite:///{tmp_path / 'partner.db'}")
    migrate.upgrade(engine)
    with Session(engine) as session:
        registry.sync_corridor(session, corridor)
        country = session.get(Country, "AZ")
        assert country is not None
        registry.set_root_certificate(country, az_root.certificate)
        session.flush()
        yield session
    engine.dispose()


@pytest.fixture
def ours(
    session: Session, corridor: Corridor, az_root: RootCA, provider: SoftwareProvider
) -> Session:
    """Our (AZ) registry after ``keys init``."""
    registry.sync_corridor(session, corridor)
    lifecycle.init_country(session, "AZ", az_root, provider, T0)
    return session


def _updates(session: Session) -> list[RegistryUpdate]:
    return list(session.scalars(select(RegistryUpdate).order_by(RegistryUpdate.sequence)))


def _key_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StoredKey)) or 0


def test_corridor_file_loads_into_the_registry(session: Session, corridor: Corridor) -> None:
    """Countries, agencies with roles and nodes with endpoints arrive from the corridor file."""
    report = registry.sync_corridor(session, corridor)
    assert (report.countries, report.agencies, report.nodes) == (2, 4, 2)
    fsa = registry.participant(session, "az-fsa")
    assert fsa is not None
    assert fsa.country == "AZ"
    assert fsa.kind is OwnerKind.AGENCY
    assert {r.value for r in fsa.roles} == {"nppo", "veterinary"}
    node = registry.participant(session, "ru-node")
    assert node is not None
    assert node.endpoint == "http://127.0.0.1:8402"
    assert [p.id for p in registry.participants(session, "RU")] == ["ru-fcs", "ru-rsn", "ru-node"]


def test_corridor_file_with_a_participant_twice_is_refused(tmp_path: Path) -> None:
    """The same id in two countries would make a signature's owner ambiguous."""
    text = CORRIDOR.replace('id = "ru-fcs"', 'id = "az-customs"')
    with pytest.raises(ConfigurationError) as caught:
        load_corridor(write_corridor(tmp_path, text))
    assert caught.value.code == "config.corridor-invalid"


def test_corridor_file_with_an_unknown_role_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_corridor(write_corridor(tmp_path, CORRIDOR.replace('"customs"]', '"police"]', 1)))
    assert caught.value.code == "config.corridor-invalid"
    assert "roles" in caught.value.message


def test_adding_a_participant_twice_is_refused(session: Session, corridor: Corridor) -> None:
    registry.sync_corridor(session, corridor)
    with pytest.raises(TrustError) as caught:
        registry.add_node(
            session, id="az-fsa", country="AZ", endpoint="http://x", tls_identity=None
        )
    assert caught.value.code == "trust.participant-exists"


def test_init_gives_each_participant_one_active_key_in_one_signed_update(ours: Session) -> None:
    """keys init: every AZ agency and node signs; the partner learns them from one update."""
    rows = registry.keys(ours, country="AZ")
    assert sorted(k.owner_id for k in rows) == ["az-customs", "az-fsa", "az-node"]
    assert {k.state for k in rows} == {"active"}
    assert all(k.provider == "software" and k.provider_ref for k in rows)
    (update,) = _updates(ours)
    assert update.sequence == 1
    assert update.country == "AZ"


def test_a_second_init_makes_no_new_keys(
    ours: Session, az_root: RootCA, provider: SoftwareProvider
) -> None:
    assert lifecycle.init_country(ours, "AZ", az_root, provider, T0) == []
    assert len(_updates(ours)) == 1


def test_the_active_key_signs_and_its_certificate_names_its_owner(
    ours: Session, provider: SoftwareProvider
) -> None:
    signer = lifecycle.signer_for(ours, "az-fsa", {"software": provider})
    assert pki.owner_uri(signer.certificate) == "urn:greenlane:agency:az-fsa"
    assert signer.sign(b"payload")


def test_partner_applies_our_updates_in_order(ours: Session, partner: Session) -> None:
    """The partner registers our keys from the signed update: same ids, same states."""
    (update,) = _updates(ours)
    apply_update(partner, update.body, update.signature, recorded_at=T0 + timedelta(seconds=5))
    theirs = {k.key_id: k.state for k in registry.keys(partner, country="AZ")}
    assert theirs == {k.key_id: k.state for k in registry.keys(ours, country="AZ")}
    assert all(k.provider is None for k in registry.keys(partner))


def test_a_replayed_update_is_refused(ours: Session, partner: Session) -> None:
    (update,) = _updates(ours)
    apply_update(partner, update.body, update.signature, recorded_at=T0)
    with pytest.raises(TrustError) as caught:
        apply_update(partner, update.body, update.signature, recorded_at=T0)
    assert caught.value.code == "trust.update-replayed"


def test_an_update_signed_by_a_node_key_is_refused_and_nothing_is_stored(
    ours: Session, partner: Session, provider: SoftwareProvider
) -> None:
    """A stolen node key cannot publish keys: only the root CA signs registry updates."""
    (update,) = _updates(ours)
    node = lifecycle.signer_for(ours, "az-node", {"software": provider})
    before = _key_count(partner)
    with pytest.raises(TrustError) as caught:
        apply_update(partner, update.body, node.sign(update.body), recorded_at=T0)
    assert caught.value.code == "trust.update-not-by-root"
    assert _key_count(partner) == before


def test_issuing_an_update_with_a_node_key_is_refused(
    ours: Session, provider: SoftwareProvider
) -> None:
    node = lifecycle.signer_for(ours, "az-node", {"software": provider})
    with pytest.raises(TrustError) as caught:
        issue_update(ours, "AZ", [], node, now=T0)
    assert caught.value.code == "trust.update-not-by-root"


def test_a_changed_update_is_refused(ours: Session, partner: Session) -> None:
    (update,) = _updates(ours)
    tampered = update.body.replace(b'"sequence":1', b'"sequence":2')
    with pytest.raises(TrustError) as caught:
        apply_update(partner, tampered, update.signature, recorded_at=T0)
    assert caught.value.code == "trust.update-not-by-root"


def test_an_update_publishing_a_certificate_from_another_root_is_refused(
    ours: Session, partner: Session, az_root: RootCA, tmp_path: Path
) -> None:
    """A key must be issued by the country's own root, even inside a root-signed update."""
    rogue_key = pki.generate_key()
    rogue_root = pki.create_root("AZ", "Rogue", rogue_key, now=T0)
    subject = pki.generate_key()
    owner = pki.Owner("AZ", OwnerKind.NODE, "az-node", "az-node")
    certificate = pki.issue(rogue_key, rogue_root, subject.public_key(), owner, now=T0)
    from cryptography.hazmat.primitives.serialization import Encoding

    from greenlane.trust.keys import key_id

    (first,) = _updates(ours)
    apply_update(partner, first.body, first.signature, recorded_at=T0)
    change = Change(
        "publish",
        key_id(certificate),
        T0,
        owner_kind=OwnerKind.NODE,
        owner="az-node",
        certificate=certificate.public_bytes(Encoding.PEM).decode(),
    )
    update = issue_update(ours, "AZ", [change], az_root.signer, now=T0)
    before = _key_count(partner)
    with pytest.raises(TrustError) as caught:
        apply_update(partner, update.body, update.signature, recorded_at=T0)
    assert caught.value.code == "trust.not-issued-by-root"
    assert _key_count(partner) == before


def test_an_update_out_of_order_is_refused(
    ours: Session, partner: Session, az_root: RootCA, provider: SoftwareProvider
) -> None:
    lifecycle.rotate(ours, "az-node", az_root, provider, T0 + timedelta(hours=1))
    second = _updates(ours)[1]
    with pytest.raises(TrustError) as caught:
        apply_update(partner, second.body, second.signature, recorded_at=T0)
    assert caught.value.code == "trust.update-out-of-order"


def test_rotation_in_two_stages(
    ours: Session, partner: Session, az_root: RootCA, provider: SoftwareProvider
) -> None:
    """The new key verifies once published, signs once activated; the old keeps verifying."""
    old = registry.signing_key(ours, "az-node")
    t1, t2 = T0 + timedelta(days=30), T0 + timedelta(days=31)
    new = lifecycle.rotate(ours, "az-node", az_root, provider, t1)
    assert new.state == "pending"
    assert registry.signing_key(ours, "az-node").key_id == old.key_id  # still signs with the old

    for update in _updates(ours):
        apply_update(partner, update.body, update.signature, recorded_at=update.recorded_at)
    keys = registry.DatabaseKeys(partner)
    pending = keys.key(new.key_id)
    assert pending is not None
    assert pending.state is KeyState.PENDING
    assert pending.refusal_at(t1 + timedelta(minutes=1)) is None  # verifies before activation

    lifecycle.activate(ours, "az-node", az_root, t2)
    last = _updates(ours)[-1]
    apply_update(partner, last.body, last.signature, recorded_at=t2)
    assert registry.signing_key(ours, "az-node").key_id == new.key_id
    retired = keys.key(old.key_id)
    assert retired is not None
    assert retired.state is KeyState.RETIRED
    assert retired.refusal_at(t2 - timedelta(days=1)) is None  # what it signed while active
    assert retired.refusal_at(t2 + timedelta(days=30)) is not None  # long after: no longer
    # The old key can no longer sign.
    assert registry.signing_key(partner, "az-node").key_id == new.key_id


def test_activating_without_a_pending_key_is_refused(ours: Session, az_root: RootCA) -> None:
    with pytest.raises(TrustError) as caught:
        lifecycle.activate(ours, "az-node", az_root, T0)
    assert caught.value.code == "trust.key-state"


def test_revocation_refuses_at_once_and_travels(
    ours: Session, partner: Session, az_root: RootCA
) -> None:
    """A revoked key vouches for nothing recorded from its revocation on, on both sides."""
    key = registry.signing_key(ours, "az-fsa")
    (first,) = _updates(ours)
    apply_update(partner, first.body, first.signature, recorded_at=T0)
    t = T0 + timedelta(days=2)
    lifecycle.revoke(ours, key.key_id[:20], "key file copied off the node", az_root, t)
    revocation = _updates(ours)[-1]
    apply_update(partner, revocation.body, revocation.signature, recorded_at=t + timedelta(hours=1))
    for side in (ours, partner):
        registered = registry.DatabaseKeys(side).key(key.key_id)
        assert registered is not None
        assert registered.state is KeyState.REVOKED
        assert registered.refusal_at(t - timedelta(minutes=1)) is None
        reason = registered.refusal_at(t + timedelta(seconds=1))
        assert reason is not None
        assert "revoked" in reason
    with pytest.raises(TrustError) as caught:
        registry.signing_key(ours, "az-fsa")
    assert caught.value.code == "trust.no-signing-key"


def test_a_revoked_key_cannot_be_activated_again(
    ours: Session, partner: Session, az_root: RootCA
) -> None:
    """Not even by a root-signed update: revocation is final."""
    key = registry.signing_key(ours, "az-node")
    lifecycle.revoke(ours, key.key_id, "test", az_root, T0 + timedelta(hours=1))
    for update in _updates(ours):
        apply_update(partner, update.body, update.signature, recorded_at=update.recorded_at)
    update = issue_update(
        ours,
        "AZ",
        [Change("activate", key.key_id, T0 + timedelta(hours=2))],
        az_root.signer,
        now=T0 + timedelta(hours=2),
    )
    with pytest.raises(TrustError) as caught:
        apply_update(partner, update.body, update.signature, recorded_at=T0 + timedelta(hours=2))
    assert caught.value.code == "trust.key-revoked"


def test_the_root_certificate_is_pinned(session: Session, corridor: Corridor) -> None:
    """Another root for a country already registered is refused, not swapped in."""
    registry.sync_corridor(session, corridor)
    country = session.get(Country, "AZ")
    assert country is not None
    first = pki.create_root("AZ", "A", pki.generate_key(), now=T0)
    second = pki.create_root("AZ", "B", pki.generate_key(), now=T0)
    registry.set_root_certificate(country, first)
    with pytest.raises(TrustError) as caught:
        registry.set_root_certificate(country, second)
    assert caught.value.code == "trust.root-mismatch"


def test_software_keys_are_encrypted_at_rest(ours: Session, provider: SoftwareProvider) -> None:
    """The PKCS#8 file is encrypted with the passphrase and readable by its owner only."""
    row = registry.signing_key(ours, "az-fsa")
    assert row.provider_ref is not None
    path = Path(row.provider_ref)
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert path.stat().st_mode & 0o077 == 0
    wrong = SoftwareProvider(provider.directory, "wrong")
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(row.certificate.encode())
    with pytest.raises(TrustError) as caught:
        wrong.signer(row.provider_ref, certificate)
    assert caught.value.code == "trust.key-unreadable"
    assert isinstance(provider.signer(row.provider_ref, certificate), SoftwareSigner)
