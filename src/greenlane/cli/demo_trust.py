"""The trust half of ``greenlane demo``: a real PKI, signed certificates, evidence both sign.

Both countries' roots and keys live in the demo folder (development only);
until the exchange between two nodes exists, one database plays both: the AZ
NPPO signs each certificate, the AZ node records it and signs a checkpoint of
its evidence log, and the RU node countersigns that checkpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from greenlane.cli.demo_certificates import signatory_of
from greenlane.corridor.agreement import load_corridor
from greenlane.findings import Finding
from greenlane.settings import Settings
from greenlane.store.documents import add_document
from greenlane.store.models import EvidenceCheckpoint
from greenlane.trust import evidence, lifecycle, personal
from greenlane.trust.keys import Role, key_id
from greenlane.trust.lifecycle import KeyProvider, SoftwareProvider
from greenlane.trust.registry import DatabaseKeys, sync_corridor
from greenlane.trust.xmldsig import judge_trust, sign_enveloped, verify_enveloped

CORRIDOR = """\
id = "AZ-RU"
name = "Azerbaijan to Russia, fresh produce (demo)"

[countries.AZ]
name = "Azerbaijan"
root_certificate = "pki/AZ-root.pem"

[[countries.AZ.agencies]]
id = "az-fsa"
name = "Food Safety Agency of the Republic of Azerbaijan"
roles = ["nppo", "veterinary"]

[[countries.AZ.agencies]]
id = "az-customs"
name = "State Customs Committee of the Republic of Azerbaijan"
roles = ["customs"]

[[countries.AZ.nodes]]
id = "az-node"
endpoint = "http://127.0.0.1:8401"

[countries.RU]
name = "Russian Federation"
root_certificate = "pki/RU-root.pem"

[[countries.RU.agencies]]
id = "ru-rsn"
name = "Federal Service for Veterinary and Phytosanitary Surveillance (Rosselkhoznadzor)"
roles = ["nppo", "veterinary"]

[[countries.RU.agencies]]
id = "ru-fcs"
name = "Federal Customs Service of Russia"
roles = ["customs"]

[[countries.RU.nodes]]
id = "ru-node"
endpoint = "http://127.0.0.1:8402"
"""

SIGNING_AGENCY = "az-fsa"
OUR_NODE, PARTNER_NODE = "az-node", "ru-node"


def set_up(session: Session, workdir: Path, settings: Settings, now: datetime) -> KeyProvider:
    """The corridor file, both roots (files: development only) and a key for each participant."""
    path = workdir / "corridor.toml"
    if not path.exists():
        path.write_text(CORRIDOR, encoding="utf-8")
    corridor = load_corridor(path)
    sync_corridor(session, corridor)
    passphrase = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
    key_dir = workdir / "keys"
    provider = SoftwareProvider(key_dir, passphrase)
    for country, entry in corridor.countries.items():
        key_file, cert_file = lifecycle.root_paths(key_dir, country)
        if key_file.exists():
            root = lifecycle.load_root_ca(key_file, cert_file, passphrase)
        else:
            root = lifecycle.create_root_ca(key_dir, country, entry.name, passphrase, now)
            target = corridor.root_certificate_path(country)
            assert target is not None
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(cert_file.read_bytes())
        lifecycle.init_country(session, country, root, provider, now)
    return provider


@dataclass(frozen=True, slots=True)
class Recorded:
    path: Path
    trusted: bool
    findings: list[Finding]
    sha256: str


def sign_and_record(
    session: Session,
    provider: KeyProvider,
    documents: list[tuple[Path, bytes, bool]],
    now: datetime,
) -> list[Recorded]:
    """Sign each certificate as the NPPO, check it as a receiver would, store it and log it.

    ``documents`` holds (path, canonical bytes, veterinary?) for each certificate.
    """
    from greenlane.validation import validate_bytes

    providers = {provider.name: provider}
    signer = lifecycle.signer_for(session, SIGNING_AGENCY, providers)
    keys = DatabaseKeys(session)
    recorded = []
    for path, raw, veterinary in documents:
        signed_path = path.with_suffix(".signed.xml")
        if signed_path.exists():  # signed on an earlier run: the same bytes, recorded once
            signed = signed_path.read_bytes()
        else:
            signed = sign_enveloped(raw, signer)
            signed_path.write_bytes(signed)
        check = verify_enveloped(signed)
        role = Role.VETERINARY if veterinary else Role.NPPO
        decision = judge_trust(
            check, keys, recorded_at=now, export_country=check.export_country, role=role
        )
        result = validate_bytes(signed, signed_path.name, Settings())
        findings = [*result.findings, *check.findings, *decision.findings]
        stored = add_document(
            session,
            raw=signed,
            document_type=result.document_type or "unknown",
            number=result.id,
            findings=findings,
            received_at=now,
        )
        recorded.append(
            Recorded(signed_path, check.intact and decision.trusted, findings, stored.sha256)
        )
        if stored.received_at != now:
            continue  # recorded on an earlier run
        _, commitment = personal.keep(
            session,
            document_type=stored.document_type,
            reference=stored.document_number or stored.sha256,
            kind="signatory",
            value=signatory_of(veterinary),
            at=now,
        )
        evidence.append(
            session,
            [
                evidence.Event(
                    evidence.Kind.DOCUMENT_SENT,
                    stored.sha256,
                    {
                        "document_type": stored.document_type,
                        "number": stored.document_number,
                        "sha256": hashlib.sha256(signed).hexdigest(),
                        "signed_by": key_id(signer.certificate),
                        "intact": check.intact,
                        "trusted": decision.trusted,
                        "signatory": commitment,
                    },
                )
            ],
            at=now,
        )
    return recorded


def checkpoint(session: Session, provider: KeyProvider, now: datetime) -> EvidenceCheckpoint:
    """Our node signs the log as it stands; the partner's node countersigns it."""
    providers = {provider.name: provider}
    ours = lifecycle.signer_for(session, OUR_NODE, providers)
    point = evidence.make_checkpoint(session, OUR_NODE, ours, at=now)
    evidence.countersign(
        session,
        point.body,
        point.signature,
        point.key_id,
        keys=DatabaseKeys(session),
        partner_node=OUR_NODE,
        signer=lifecycle.signer_for(session, PARTNER_NODE, providers),
        me=PARTNER_NODE,
        at=now,
    )
    return point
