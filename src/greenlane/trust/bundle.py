"""Evidence bundles: everything needed to prove, offline, what happened to one document.

A bundle is one JSON file: the document's exact bytes, the log entries about
it with their inclusion proofs to a countersigned checkpoint, that checkpoint
with both signatures, and the certificates of the keys and roots involved.
:func:`verify_bundle` checks it with no database: hashes, proofs, signatures,
certificate chains to the roots in the bundle, and, when the verifier pins
roots of its own (a corridor file), that the bundle's roots are those.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select
from sqlalchemy.orm import Session

from greenlane.store.models import (
    Country,
    EvidenceCheckpoint,
    EvidenceEntry,
    StoredDocument,
    StoredKey,
)
from greenlane.trust import evidence, merkle, pki
from greenlane.trust.keys import OwnerKind, key_id
from greenlane.trust.signers import TrustError, algorithm_for, verify_raw

TYPE = "greenlane.evidence-bundle"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(text, validate=True)


def find_document(session: Session, reference: str) -> StoredDocument:
    """A stored document by its row id, SHA-256 or certificate number (the newest)."""
    document = None
    if reference.isdigit():
        document = session.get(StoredDocument, int(reference))
    if document is None:
        document = session.scalar(
            select(StoredDocument)
            .where(
                (StoredDocument.sha256 == reference.lower())
                | (StoredDocument.document_number == reference)
            )
            .order_by(StoredDocument.id.desc())
        )
    if document is None:
        raise TrustError(f"no stored document {reference!r}", code="evidence.not-found")
    return document


def make_bundle(session: Session, reference: str, log: str) -> dict[str, Any]:
    """The bundle for one stored document, proved against the newest countersigned checkpoint."""
    document = find_document(session, reference)
    entries = list(
        session.scalars(
            select(EvidenceEntry)
            .where(EvidenceEntry.subject == document.sha256)
            .order_by(EvidenceEntry.seq)
        )
    )
    if not entries:
        raise TrustError(
            f"the log has no entry about document {reference}", code="evidence.not-found"
        )
    point = session.scalar(
        select(EvidenceCheckpoint)
        .where(
            EvidenceCheckpoint.log == log,
            EvidenceCheckpoint.countersignature.is_not(None),
            EvidenceCheckpoint.size > entries[-1].seq,
        )
        .order_by(EvidenceCheckpoint.size.desc())
    )
    if point is None:
        raise TrustError(
            f"no countersigned checkpoint of {log} covers entry {entries[-1].seq} yet",
            code="evidence.no-checkpoint",
        )
    tree = merkle.Tree(evidence.leaf_hashes(session, point.size))
    key_ids = {point.key_id, point.counter_key_id}
    keys = {
        k.key_id: k for k in session.scalars(select(StoredKey).where(StoredKey.key_id.in_(key_ids)))
    }
    roots = {
        c.code: c.root_certificate
        for c in session.scalars(
            select(Country).where(Country.code.in_({k.country for k in keys.values()}))
        )
    }
    return {
        "type": TYPE,
        "version": 1,
        "log": log,
        "document": {
            "id": document.id,
            "type": document.document_type,
            "number": document.document_number,
            "sha256": document.sha256,
            "received_at": document.received_at.isoformat(),
            "bytes": _b64(document.raw),
        },
        "entries": [
            {
                "seq": e.seq,
                "body": _b64(e.body),
                "proof": [h.hex() for h in tree.inclusion_proof(e.seq, point.size)],
            }
            for e in entries
        ],
        "checkpoint": {
            "body": _b64(point.body),
            "key_id": point.key_id,
            "signature": _b64(point.signature),
            "countersigner": point.countersigner,
            "counter_key_id": point.counter_key_id,
            "countersignature": _b64(point.countersignature or b""),
        },
        "keys": {
            k.key_id: {
                "country": k.country,
                "owner": k.owner_id,
                "owner_kind": k.owner_kind,
                "certificate": k.certificate,
            }
            for k in keys.values()
        },
        "roots": roots,
        "receipts": [],
    }


@dataclass(slots=True)
class BundleReport:
    document: str = ""
    entries: int = 0
    checkpoint_size: int = 0
    roots: dict[str, str] = field(default_factory=dict)
    """Country -> SHA-256 fingerprint of the root certificate the bundle carries."""
    roots_pinned: bool = False
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_bundle(
    data: bytes, pinned_roots: dict[str, x509.Certificate] | None = None
) -> BundleReport:
    """Check a bundle with nothing but itself (and, if given, roots pinned by the verifier)."""
    report = BundleReport()
    try:
        bundle = json.loads(data)
        if not isinstance(bundle, dict) or bundle.get("type") != TYPE:
            raise ValueError("not a greenlane evidence bundle")
        _check(bundle, pinned_roots, report)
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(("evidence.malformed", f"bundle unreadable: {exc}"))
    except TrustError as exc:
        report.problems.append((exc.code, exc.message))
    return report


def _check(
    bundle: dict[str, Any], pinned: dict[str, x509.Certificate] | None, report: BundleReport
) -> None:
    document = bundle["document"]
    raw = _unb64(document["bytes"])
    digest = hashlib.sha256(raw).hexdigest()
    report.document = f"{document.get('type')} {document.get('number')} ({digest[:16]})"
    if digest != document["sha256"]:
        report.problems.append(
            ("evidence.entry-modified", "the document bytes are not the ones logged")
        )
    roots = {
        c: x509.load_pem_x509_certificate(pem.encode("ascii")) for c, pem in bundle["roots"].items()
    }
    report.roots = {c: r.fingerprint(hashes.SHA256()).hex() for c, r in roots.items()}
    if pinned is not None:
        report.roots_pinned = True
        for country, root in roots.items():
            if country not in pinned or key_id(pinned[country]) != key_id(root):
                report.problems.append(
                    ("trust.root-mismatch", f"the bundle's {country} root is not the pinned one")
                )
    certificates = _certificates(bundle["keys"], roots, report)
    point = bundle["checkpoint"]
    body = _unb64(point["body"])
    view = evidence.read_checkpoint(body)
    report.checkpoint_size = view.size
    if view.log != bundle["log"]:
        report.problems.append(
            ("evidence.bad-checkpoint", f"checkpoint of {view.log}, not {bundle['log']}")
        )
    _signature(
        certificates, point["key_id"], bundle["log"], _unb64(point["signature"]), body, report
    )
    _signature(
        certificates,
        point["counter_key_id"],
        point["countersigner"],
        _unb64(point["countersignature"]),
        body,
        report,
    )
    for entry in bundle["entries"]:
        report.entries += 1
        entry_body = _unb64(entry["body"])
        data = json.loads(entry_body)
        if data.get("subject") != digest or data.get("seq") != entry["seq"]:
            report.problems.append(
                ("evidence.entry-modified", f"entry {entry['seq']} is not about this document")
            )
        proof = [bytes.fromhex(h) for h in entry["proof"]]
        if not merkle.verify_inclusion(
            merkle.leaf_hash(entry_body), entry["seq"], view.size, proof, view.root
        ):
            report.problems.append(
                (
                    "evidence.history-rewritten",
                    f"entry {entry['seq']} is not in the log the checkpoint signs",
                )
            )


def _certificates(
    keys: dict[str, Any], roots: dict[str, x509.Certificate], report: BundleReport
) -> dict[str, tuple[x509.Certificate, str]]:
    """Key id -> (certificate, owner) for the keys whose certificate chains to their root."""
    out = {}
    for kid, info in keys.items():
        certificate = x509.load_pem_x509_certificate(info["certificate"].encode("ascii"))
        root = roots.get(info["country"])
        if root is None or key_id(certificate) != kid:
            report.problems.append(
                ("trust.not-issued-by-root", f"key {kid[:16]} has no root in the bundle")
            )
            continue
        try:
            pki.check_issued_by(certificate, root)
        except TrustError as exc:
            report.problems.append((exc.code, exc.message))
            continue
        owner = pki.owner_uri(certificate)
        expected = pki.Owner(info["country"], OwnerKind(info["owner_kind"]), info["owner"], "").uri
        if owner != expected:
            report.problems.append(("trust.not-issued-by-root", f"key {kid[:16]} names {owner}"))
            continue
        out[kid] = (certificate, info["owner"])
    return out


def _signature(
    certificates: dict[str, tuple[x509.Certificate, str]],
    kid: str,
    node: str,
    signature: bytes,
    body: bytes,
    report: BundleReport,
) -> None:
    found = certificates.get(kid)
    if found is None or found[1] != node:
        report.problems.append(
            ("evidence.bad-checkpoint", f"no certificate of {node} for key {str(kid)[:16]}")
        )
        return
    certificate = found[0]
    if not verify_raw(certificate, algorithm_for(certificate.public_key()), signature, body):
        report.problems.append(
            ("evidence.bad-checkpoint", f"the signature of {node} on the checkpoint fails")
        )


def encode(bundle: dict[str, Any]) -> bytes:
    return (json.dumps(bundle, indent=1, sort_keys=True) + "\n").encode("utf-8")
