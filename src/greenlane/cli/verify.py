"""``greenlane verify``: is a signed certificate intact, and do we trust who signed it?

Trust comes from the registry (the configured database) or, with ``--trust``,
from a PEM file of pinned signer certificates; never from the system CA store.
Keys and certificates are judged at the time this node recorded the exact
bytes (when the database holds them); a file it never recorded has no such
time, so it is judged at the certificate's own IssueDateTime, and each
verdict says which.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from greenlane.cli.console import err, exit_status, out, print_findings, print_json
from greenlane.codes import finding
from greenlane.errors import ConfigurationError
from greenlane.findings import Finding
from greenlane.settings import Settings

if TYPE_CHECKING:
    from greenlane.trust.keys import KeyLookup, RegisteredKey
    from greenlane.trust.xmldsig import SignatureCheck, TrustDecision


@dataclass(slots=True)
class Verdict:
    path: str
    unreadable: bool = False
    check: SignatureCheck | None = None
    decision: TrustDecision | None = None
    findings: list[Finding] | None = None

    @property
    def intact(self) -> bool:
        return self.check is not None and self.check.intact

    @property
    def trusted(self) -> bool:
        return self.decision is not None and self.decision.trusted

    def to_dict(self) -> dict[str, Any]:
        check, decision = self.check, self.decision
        signer = check.signer if check else None

        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "path": self.path,
            "valid": self.intact and self.trusted,
            "intact": self.intact,
            "trusted": self.trusted,
            "signer": None
            if signer is None
            else {
                "name": signer.name,
                "country": signer.country,
                "key_id": signer.key_id,
                "self_signed": signer.self_signed,
            },
            "algorithm": check.algorithm if check else None,
            "certificate_valid_from": when(check.certificate_valid_from) if check else None,
            "certificate_valid_to": when(check.certificate_valid_to) if check else None,
            "judged_at": when(decision.judged_at) if decision else None,
            "time_source": decision.time_source.value
            if decision and decision.time_source
            else None,
            "findings": [f.to_dict() for f in self.findings or []],
        }


class PinnedCertificates:
    """Signer certificates pinned in a PEM file, as if registered and active all their life."""

    def __init__(self, path: Path) -> None:
        from cryptography import x509

        from greenlane.trust.keys import KeyState, OwnerKind, RegisteredKey, Role, key_id
        from greenlane.trust.pki import owner_uri

        try:
            certificates = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"{path}: not a PEM file of certificates ({exc})", code="config.invalid"
            ) from exc
        self.keys: dict[str, RegisteredKey] = {}
        for certificate in certificates:
            uri = owner_uri(certificate) or ""
            kind, _, owner = uri.removeprefix("urn:greenlane:").partition(":")
            countries = certificate.subject.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)
            self.keys[key_id(certificate)] = RegisteredKey(
                key_id=key_id(certificate),
                country=str(countries[0].value) if countries else "",
                owner=owner or certificate.subject.rfc4514_string(),
                owner_kind=OwnerKind.NODE if kind == "node" else OwnerKind.AGENCY,
                roles=frozenset(Role),
                certificate=certificate,
                state=KeyState.ACTIVE,
                published_at=certificate.not_valid_before_utc,
                activated_at=certificate.not_valid_before_utc,
            )

    def key(self, key_id: str) -> RegisteredKey | None:
        return self.keys.get(key_id)


class _NoKeys:
    def key(self, key_id: str) -> RegisteredKey | None:
        return None


def _judge(
    path: Path,
    keys: KeyLookup,
    settings: Settings,
    recorded: Callable[[bytes], datetime | None] = lambda data: None,
) -> Verdict:
    from greenlane.safexml import XmlLimits
    from greenlane.trust.xmldsig import judge_trust, verify_enveloped

    verdict = Verdict(str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        verdict.unreadable = True
        code = "input.not-found" if isinstance(exc, FileNotFoundError) else "input.unreadable"
        verdict.findings = [finding(code, f"{path}: {exc.strerror or type(exc).__name__}")]
        return verdict
    check = verify_enveloped(data, limits=XmlLimits.from_settings(settings))
    decision = judge_trust(
        check, keys, recorded_at=recorded(data), export_country=check.export_country
    )
    verdict.check, verdict.decision = check, decision
    verdict.findings = [*check.findings, *decision.findings]
    return verdict


def verify(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Signed certificates.", show_default=False)],
    trust: Annotated[
        Path | None,
        typer.Option(
            "--trust",
            help="A PEM file of signer certificates to trust (default: the registry in the "
            "database).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """Check each file's signature; exit 0 only when every one is intact and trusted."""
    settings: Settings = ctx.obj
    if trust is not None:
        verdicts = [_judge(path, PinnedCertificates(trust), settings) for path in paths]
    else:
        verdicts = _with_registry(paths, settings)
    if as_json:
        print_json([v.to_dict() for v in verdicts])
    else:
        for v in verdicts:
            _print(v)
    status = exit_status(
        [v.unreadable for v in verdicts], [v.intact and v.trusted for v in verdicts]
    )
    raise typer.Exit(int(status))


def _with_registry(paths: list[Path], settings: Settings) -> list[Verdict]:
    """Judge against the database registry; with no usable database, trust nobody, and say so."""
    from sqlalchemy import select

    from greenlane.cli.database import transaction
    from greenlane.errors import GreenlaneError
    from greenlane.store.models import StoredDocument
    from greenlane.trust.registry import DatabaseKeys

    try:
        with transaction(settings) as session:

            def recorded(data: bytes) -> datetime | None:
                """When this node recorded these exact bytes, if it did: the time to judge at."""
                digest = hashlib.sha256(data).hexdigest()
                stored = session.scalar(
                    select(StoredDocument).where(StoredDocument.sha256 == digest)
                )
                return stored.received_at if stored is not None else None

            keys = DatabaseKeys(session)
            return [_judge(path, keys, settings, recorded) for path in paths]
    except GreenlaneError as exc:
        if exc.code != "db.not-migrated":
            raise
        err.print(
            Text(
                "no participant registry in this database: no signer can be trusted "
                "(run `greenlane db upgrade` and `greenlane participants load`, or pass --trust)",
                style="yellow",
            )
        )
        return [_judge(path, _NoKeys(), settings) for path in paths]


def _print(v: Verdict) -> None:
    if v.unreadable:
        mark, style = "unreadable", "bold red"
    elif v.intact and v.trusted:
        mark, style = "trusted", "bold green"
    elif v.intact:
        mark, style = "untrusted", "bold yellow"
    else:
        mark, style = "broken", "bold red"
    check = v.check
    signer = check.signer if check else None
    who = f"  signed by {signer.name} ({signer.country or '?'})" if signer else ""
    algorithm = f", {check.algorithm}" if check and check.algorithm else ""
    out.print(Text.assemble((f"{mark:<10} ", style), v.path, (f"{who}{algorithm}", "dim")))
    print_findings(v.findings or [])
