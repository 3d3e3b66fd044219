"""Signing keys on a PKCS#11 token, against a real SoftHSM2 token made for the run."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Attribute, ObjectClass
from pkcs11.exceptions import AttributeSensitive

from greenlane.settings import Settings, load_settings
from greenlane.trust import pki
from greenlane.trust.keys import OwnerKind, public_key_id
from greenlane.trust.lifecycle import KeyProvider, PublicKey
from greenlane.trust.pkcs11 import Pkcs11Provider, Pkcs11Signer
from greenlane.trust.signers import Algorithm, TrustError, algorithm_for, verify_raw

from .softhsm import MODULE, SoftHsm, softhsm

__all__ = ["softhsm"]

NOW = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)
DATA = b'{"certificate": "AZ-2026-000123", "status": 70}'


@dataclass(frozen=True)
class Root:
    key: pki.PrivateKey
    certificate: x509.Certificate

    def issue(self, public: PublicKey, owner: str) -> x509.Certificate:
        return pki.issue(
            self.key,
            self.certificate,
            public,
            pki.Owner("AZ", OwnerKind.AGENCY, owner, owner),
            now=NOW,
        )


@pytest.fixture(scope="session")
def root() -> Root:
    key = pki.generate_key()
    return Root(key, pki.create_root("AZ", "Azerbaijan", key, now=NOW))


@pytest.fixture
def provider(softhsm: SoftHsm) -> Pkcs11Provider:
    return Pkcs11Provider.from_settings(_settings(softhsm))


def _settings(softhsm: SoftHsm, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "signing_provider": "pkcs11",
        "pkcs11_module": softhsm.module,
        "pkcs11_token_label": softhsm.token,
        "pkcs11_pin": softhsm.pin,
    }
    values.update(overrides)
    return load_settings(**values)


def _objects(softhsm: SoftHsm, label: str) -> tuple[pkcs11.PublicKey, pkcs11.PrivateKey]:
    """The pair on the token, seen directly through python-pkcs11 (the process is logged in)."""
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.token)
    session = token.open()
    public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
    private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
    return public, private  # type: ignore[return-value]


@pytest.mark.parametrize("algorithm", [Algorithm.ES256, Algorithm.RS256])
def test_key_made_on_the_token_signs_what_its_certificate_verifies(
    provider: Pkcs11Provider, root: Root, algorithm: Algorithm
) -> None:
    """A key generated on the token signs; the signature verifies under its certificate only."""
    keys: KeyProvider = provider
    public, reference = keys.generate(f"az-fsa-{algorithm.lower()}", algorithm)
    assert algorithm_for(public) is algorithm
    if algorithm is Algorithm.RS256:
        assert public.key_size == 3072
    certificate = root.issue(public, "az-fsa")
    signer = keys.signer(reference, certificate)
    assert signer.algorithm is algorithm
    assert signer.certificate is certificate
    signature = signer.sign(DATA)
    if algorithm is Algorithm.ES256:
        assert len(signature) == 64
    assert verify_raw(certificate, algorithm, signature, DATA)
    assert not verify_raw(certificate, algorithm, signature, DATA + b" ")
    assert not verify_raw(certificate, algorithm, signature[:-1] + bytes([signature[-1] ^ 1]), DATA)


def test_key_is_labelled_and_identified_by_its_public_key(
    provider: Pkcs11Provider, softhsm: SoftHsm
) -> None:
    """The reference is greenlane:<owner>:<16 hex>; CKA_ID is the whole key id on both objects."""
    public, reference = provider.generate("az-customs", Algorithm.ES256)
    kid = public_key_id(public)
    assert reference == f"greenlane:az-customs:{kid[:16]}"
    for obj in _objects(softhsm, reference):
        assert obj[Attribute.ID] == bytes.fromhex(kid)
        assert obj[Attribute.TOKEN] is True


def test_private_key_cannot_leave_the_token(provider: Pkcs11Provider, softhsm: SoftHsm) -> None:
    """The private key is sensitive, never extractable, private: its value cannot be read."""
    _, reference = provider.generate("az-node", Algorithm.ES256)
    _, private = _objects(softhsm, reference)
    assert private[Attribute.SENSITIVE] is True
    assert private[Attribute.EXTRACTABLE] is False
    assert private[Attribute.PRIVATE] is True
    assert private[Attribute.NEVER_EXTRACTABLE] is True
    with pytest.raises(AttributeSensitive):
        private[Attribute.VALUE]


def test_certificate_for_another_key_is_refused(provider: Pkcs11Provider, root: Root) -> None:
    """A certificate naming another key than the token's is refused before anything is signed."""
    _, reference = provider.generate("ru-rsn", Algorithm.ES256)
    other, _ = provider.generate("ru-rsn", Algorithm.ES256)
    with pytest.raises(TrustError) as caught:
        provider.signer(reference, root.issue(other, "ru-rsn"))
    assert caught.value.code == "trust.key-mismatch"
    software = pki.generate_key(Algorithm.ES256).public_key()
    with pytest.raises(TrustError) as caught:
        provider.signer(reference, root.issue(software, "ru-rsn"))
    assert caught.value.code == "trust.key-mismatch"


def test_unknown_reference_is_refused(provider: Pkcs11Provider, root: Root) -> None:
    """A label with no key pair on the token is a clear error, not a PKCS#11 exception."""
    certificate = root.issue(pki.generate_key().public_key(), "ru-fcs")
    with pytest.raises(TrustError) as caught:
        provider.signer("greenlane:ru-fcs:0000000000000000", certificate)
    assert caught.value.code == "trust.pkcs11-no-key"


def test_signers_are_safe_to_share_between_threads(provider: Pkcs11Provider, root: Root) -> None:
    """Many threads signing through one signer all get valid signatures."""
    public, reference = provider.generate("az-threads", Algorithm.ES256)
    certificate = root.issue(public, "az-threads")
    signer = provider.signer(reference, certificate)
    messages = [DATA + str(i).encode() for i in range(64)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        signatures = list(pool.map(signer.sign, messages))
    assert all(
        verify_raw(certificate, Algorithm.ES256, s, m)
        for s, m in zip(signatures, messages, strict=True)
    )


def test_key_is_found_again_by_another_process(
    provider: Pkcs11Provider, softhsm: SoftHsm, root: Root, tmp_path: Path
) -> None:
    """The key stays on the token: a fresh process finds it by its reference and signs with it."""
    public, reference = provider.generate("az-restart", Algorithm.ES256)
    certificate = root.issue(public, "az-restart")
    cert_file = tmp_path / "cert.der"
    cert_file.write_bytes(certificate.public_bytes(Encoding.DER))
    args = [str(softhsm.module), softhsm.token, softhsm.pin, reference, str(cert_file)]
    result = subprocess.run(
        [sys.executable, "-c", _SIGN_IN_A_NEW_PROCESS, *args, DATA.hex()],
        env={"SOFTHSM2_CONF": str(softhsm.conf), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert verify_raw(certificate, Algorithm.ES256, bytes.fromhex(result.stdout), DATA)


_SIGN_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
from cryptography import x509
from greenlane.trust.pkcs11 import Pkcs11Provider
module, token, pin, reference, cert_file, data = sys.argv[1:]
provider = Pkcs11Provider.open(Path(module), token, pin)
certificate = x509.load_der_x509_certificate(Path(cert_file).read_bytes())
sys.stdout.write(provider.signer(reference, certificate).sign(bytes.fromhex(data)).hex())
"""


def test_wrong_pin_is_refused(softhsm: SoftHsm) -> None:
    """A PIN the token rejects makes the provider unavailable, at start, with the token named."""
    with pytest.raises(TrustError) as caught:
        Pkcs11Provider.from_settings(
            _settings(softhsm, pkcs11_token_label=softhsm.untouched_token, pkcs11_pin="wrong-pin")
        )
    assert caught.value.code == "trust.pkcs11-unavailable"
    assert softhsm.untouched_token in caught.value.message
    assert "PinIncorrect" in caught.value.message
    assert "wrong-pin" not in caught.value.message


def test_pin_other_than_the_logged_in_one_is_refused(
    provider: Pkcs11Provider, softhsm: SoftHsm
) -> None:
    """Once this process is logged in, another PIN for the same token is still refused."""
    with pytest.raises(TrustError) as caught:
        Pkcs11Provider.from_settings(_settings(softhsm, pkcs11_pin="another-pin"))
    assert caught.value.code == "trust.pkcs11-unavailable"


@pytest.mark.parametrize(
    ("module", "label"),
    [
        (Path("/nonexistent/libpkcs11.so"), "greenlane-test"),
        (None, "no-such-token"),
    ],
)
def test_missing_module_or_token_is_unavailable(
    softhsm: SoftHsm, module: Path | None, label: str
) -> None:
    """A module that is not there, or a token label the module does not have, is unavailable."""
    with pytest.raises(TrustError) as caught:
        Pkcs11Provider.from_settings(
            _settings(softhsm, pkcs11_module=module or softhsm.module, pkcs11_token_label=label)
        )
    assert caught.value.code == "trust.pkcs11-unavailable"


@pytest.mark.parametrize(
    "missing", ["pkcs11_module", "pkcs11_token_label", "pkcs11_pin", "everything"]
)
def test_missing_settings_are_a_configuration_error(missing: str) -> None:
    """Without module, token label or PIN the provider refuses to start, naming what is missing."""
    values: dict[str, object] = {
        "signing_provider": "pkcs11",
        "pkcs11_module": MODULE,
        "pkcs11_token_label": "greenlane-test",
        "pkcs11_pin": "1234",
    }
    names = [missing] if missing != "everything" else [k for k in values if k.startswith("pkcs")]
    for name in names:
        del values[name]
    with pytest.raises(TrustError) as caught:
        Pkcs11Provider.from_settings(load_settings(**values))
    assert caught.value.code == "trust.pkcs11-config"
    for name in names:
        assert f"GREENLANE_{name.upper()}" in caught.value.message


def test_signer_type_is_the_pkcs11_one(provider: Pkcs11Provider, root: Root) -> None:
    """The provider is named for the registry and hands out token-backed signers."""
    public, reference = provider.generate("az-kind", Algorithm.ES256)
    assert provider.name == "pkcs11"
    assert isinstance(provider.signer(reference, root.issue(public, "az-kind")), Pkcs11Signer)
