"""The files mutual TLS needs, from the node's registry entry: its certificate, key and the roots.

The node's signing key doubles as its TLS key (its certificate carries both
clientAuth and serverAuth), so there is one key to rotate and protect. Python's
``ssl`` reads keys only from files: this works with the software provider
(encrypted PKCS#8 files), not with a PKCS#11 token, where a TLS terminator
that speaks PKCS#11 would sit in front instead.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from greenlane.errors import GreenlaneError
from greenlane.exchange.context import NodeContext
from greenlane.trust import registry


def node_tls_files(ctx: NodeContext) -> tuple[Path, Path, str | None]:
    """(certificate file, key file, passphrase) of the node's active key."""
    with ctx.reads() as session:
        row = registry.signing_key(session, ctx.node_id)
    if row.provider != "software" or not row.provider_ref:
        raise GreenlaneError(
            f"TLS needs the node key in a file; {ctx.node_id}'s is held by {row.provider}",
            code="tls.credentials",
        )
    key_file = Path(row.provider_ref)
    cert_file = key_file.with_name(f"{row.key_id[:16]}.tls.pem")
    if not cert_file.exists():
        cert_file.write_text(row.certificate, encoding="ascii")
    passphrase = ctx.settings.key_passphrase
    return cert_file, key_file, passphrase.get_secret_value() if passphrase else None


def roots_by_country(ctx: NodeContext) -> dict[str, x509.Certificate]:
    """Each corridor country's root CA certificate: the only TLS trust anchors."""
    with ctx.reads() as session:
        return {code: registry.root_certificate(session, code) for code in ctx.corridor.countries}


def corridor_roots(ctx: NodeContext) -> list[x509.Certificate]:
    """The root CA certificates of every corridor country, as the SSL contexts take them."""
    return list(roots_by_country(ctx).values())
