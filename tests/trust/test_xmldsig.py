"""XML-DSig enveloped signatures on SPS certificates: the profile we sign, accept and refuse."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)

from greenlane.codes import CODES
from greenlane.findings import Area
from greenlane.trust.keys import Role
from greenlane.trust.signers import Algorithm, SoftwareSigner, TrustError
from greenlane.trust.xmldsig import (
    DS,
    SignatureCheck,
    TimeSource,
    judge_trust,
    sign_enveloped,
    verify_enveloped,
)
from tests.trust.pkitools import T0, CorridorPki

INTERCOM = Path("ephyto/intercom")
NS = {"ds": DS}
RECORDED = T0 + timedelta(hours=1)


def codes(check: SignatureCheck) -> list[str]:
    return [f.code for f in check.findings]


@pytest.fixture(scope="module")
def plain(corpus: Path) -> bytes:
    """The INTERCOM example certificate (CO -> PE) before it was signed."""
    return (corpus / INTERCOM / "SPSCertificate.xml").read_bytes()


@pytest.fixture(scope="module")
def real(corpus: Path) -> bytes:
    return (corpus / INTERCOM / "SPSCertificate-signed.xml").read_bytes()


@pytest.fixture(scope="module")
def corridor_pki() -> CorridorPki:
    return CorridorPki()


@pytest.fixture(scope="module", params=[Algorithm.RS256, Algorithm.ES256])
def signer(request: pytest.FixtureRequest, corridor_pki: CorridorPki) -> SoftwareSigner:
    """An NPPO key of Colombia, the INTERCOM example's export country."""
    algorithm: Algorithm = request.param
    return corridor_pki.signer("CO", algorithm, agency=f"co-ica-{algorithm.value.lower()}")


@pytest.fixture(scope="module")
def signed(plain: bytes, signer: SoftwareSigner) -> bytes:
    return sign_enveloped(plain, signer)


def mutate(data: bytes, change: Callable[[etree._Element], object]) -> bytes:
    root = etree.fromstring(data)
    change(root)
    return etree.tostring(root)


def signature_of(root: etree._Element) -> etree._Element:
    found = root.find("ds:Signature", NS)
    assert found is not None
    return found


def set_algorithm(xpath: str, uri: str) -> Callable[[etree._Element], object]:
    def change(root: etree._Element) -> None:
        found = root.xpath(xpath, namespaces=NS)
        assert isinstance(found, list)
        element = found[0]
        assert isinstance(element, etree._Element)
        element.set("Algorithm", uri)

    return change


# --- the real signed certificate ------------------------------------------------------------


def test_real_certificate_is_intact(real: bytes) -> None:
    """Agrocalidad's INTERCOM signature (exclusive C14N, Reference without URI) verifies."""
    check = verify_enveloped(real)
    assert check.intact, check.findings
    assert check.digest_ok
    assert check.value_ok
    assert check.algorithm == "rsa-sha256"
    assert check.signer is not None
    assert check.signer.name.startswith("Agrocalidad")
    assert check.signer.country == "EC"
    assert check.signer.self_signed
    assert check.certificate_valid_from == datetime(2024, 8, 19, 20, 18, 18, tzinfo=UTC)
    assert check.certificate_valid_to == datetime(2025, 8, 19, 20, 18, 18, tzinfo=UTC)
    assert check.export_country == "CO"
    assert check.issued_at == datetime(2024, 2, 26, 10, 15, tzinfo=UTC)


def test_real_certificate_is_not_trusted_for_three_reasons(real: bytes) -> None:
    """Unregistered self-signed key, certificate not valid at issue time, EC signing for CO."""
    decision = judge_trust(verify_enveloped(real), CorridorPki())
    assert not decision.trusted
    assert [f.code for f in decision.findings] == [
        "policy.unknown-key",
        "policy.certificate-not-valid",
        "policy.country-mismatch",
    ]
    assert all(f.area is Area.POLICY for f in decision.findings)
    assert "self-signed" in decision.findings[0].message
    assert decision.time_source is TimeSource.ISSUE_DATE
    assert "IssueDateTime (2024-02-26T10:15:00+00:00" in decision.findings[1].message
    assert "country is EC" in decision.findings[2].message
    assert "export country is CO" in decision.findings[2].message


def test_real_signed1_is_the_same_file(corpus: Path, real: bytes) -> None:
    """SPSCertificate-signed1.xml is a byte-for-byte copy of SPSCertificate-signed.xml."""
    assert (corpus / INTERCOM / "SPSCertificate-signed1.xml").read_bytes() == real


def test_real_certificate_with_one_changed_character_is_not_intact(real: bytes) -> None:
    """One character of a signed text changed: the digest no longer matches."""
    tampered = real.replace(b"Lot number:8888", b"Lot number:8889")
    assert tampered != real
    check = verify_enveloped(tampered)
    assert not check.intact
    assert codes(check) == ["signature.digest-mismatch"]
    assert check.value_ok  # SignedInfo itself is untouched: it is the document that changed


def test_signxml_refuses_what_real_systems_emit(real: bytes) -> None:
    """Why a verifier of our own: signxml refuses a Reference without URI."""
    check = verify_enveloped(real)
    assert check.signer is not None
    with pytest.raises(Exception, match="without URI"):
        XMLVerifier().verify(
            real,
            x509_cert=check.signer.certificate,
            expect_config=SignatureConfiguration(verification_time=check.certificate_valid_from),
        )


# --- round trip --------------------------------------------------------------------------------


def test_signed_output_keeps_the_original_bytes(plain: bytes, signed: bytes) -> None:
    """The signature is inserted before the root's end tag; nothing else moves."""
    start = signed.index(b"<ds:Signature")
    end = signed.index(b"</ds:Signature>") + len(b"</ds:Signature>")
    assert signed[:start] + signed[end:] == plain


def test_round_trip_is_intact_and_trusted(
    signed: bytes, signer: SoftwareSigner, corridor_pki: CorridorPki
) -> None:
    """Our signature verifies; with the key registered for CO the signer is trusted."""
    check = verify_enveloped(signed)
    assert check.intact, check.findings
    assert check.algorithm == (
        "rsa-sha256" if signer.algorithm is Algorithm.RS256 else "ecdsa-sha256"
    )
    assert not judge_trust(check, CorridorPki(), recorded_at=RECORDED).trusted
    corridor_pki.register(signer)
    decision = judge_trust(check, corridor_pki, recorded_at=RECORDED, role=Role.NPPO)
    assert decision.trusted, decision.findings
    assert decision.time_source is TimeSource.RECORDED


def test_output_is_schema_valid(corpus: Path, signed: bytes) -> None:
    """The INTERCOM SPS schema accepts the signed certificate (its optional ds:Signature)."""
    schema = etree.XMLSchema(
        etree.parse(str(corpus / "schemas/sps/data/standard/SPSCertificate_17p0.xsd"))
    )
    assert schema.validate(etree.fromstring(signed)), schema.error_log


def test_signxml_verifies_our_output(signed: bytes, signer: SoftwareSigner) -> None:
    """Interop: a general XML-DSig verifier accepts what we sign."""
    result = XMLVerifier().verify(signed, x509_cert=signer.certificate)
    assert not isinstance(result, list)
    assert result.signed_xml is not None


def test_we_verify_signxml_output(plain: bytes, signer: SoftwareSigner) -> None:
    """Interop: signxml's enveloped signature (URI="", inclusive C14N) verifies with ours."""
    method = (
        SignatureMethod.RSA_SHA256
        if signer.algorithm is Algorithm.RS256
        else SignatureMethod.ECDSA_SHA256
    )
    root = XMLSigner(
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    ).sign(etree.fromstring(plain), key=signer.private_key, cert=[signer.certificate])
    check = verify_enveloped(etree.tostring(root))
    assert check.intact, check.findings


def test_reserialised_document_stays_intact(signed: bytes) -> None:
    """Canonicalisation makes the check independent of serialisation details."""
    assert verify_enveloped(mutate(signed, lambda root: None)).intact


def test_signing_twice_is_refused(signed: bytes, signer: SoftwareSigner) -> None:
    """A second enveloped signature would make the document unverifiable in our profile."""
    with pytest.raises(TrustError):
        sign_enveloped(signed, signer)


def test_chain_in_keyinfo_names_the_leaf(
    signed: bytes, signer: SoftwareSigner, corridor_pki: CorridorPki
) -> None:
    """With the root certificate beside it, the signer is the certificate the root issued."""
    root_certificate = corridor_pki.root("CO")[1]

    def add_root(root: etree._Element) -> None:
        data = signature_of(root).find("ds:KeyInfo/ds:X509Data", NS)
        assert data is not None
        extra = etree.SubElement(data, f"{{{DS}}}X509Certificate")
        extra.text = base64.b64encode(root_certificate.public_bytes(Encoding.DER)).decode()
        data.insert(0, extra)

    check = verify_enveloped(mutate(signed, add_root))
    assert check.intact, check.findings
    assert check.signer is not None
    assert check.signer.certificate == signer.certificate


# --- attacks: each refused with its own code -------------------------------------------------


def _change_text(root: etree._Element) -> None:
    identifier = root[0][0]
    assert identifier.text == "123456789CO"
    identifier.text = "123456789CX"


def _second_document(root: etree._Element) -> None:
    forged = copy.deepcopy(root[0])
    forged[0].text = "FORGED-0001"
    root.insert(0, forged)


def _move_signature(root: etree._Element) -> None:
    root[1].append(signature_of(root))


def _reference_to_element(root: etree._Element) -> None:
    root[1].set("ID", "consignment")
    reference = signature_of(root).find("ds:SignedInfo/ds:Reference", NS)
    assert reference is not None
    reference.set("URI", "#consignment")


def _two_references(root: etree._Element) -> None:
    reference = signature_of(root).find("ds:SignedInfo/ds:Reference", NS)
    assert reference is not None
    reference.addnext(copy.deepcopy(reference))


def _two_signatures(root: etree._Element) -> None:
    root.append(copy.deepcopy(signature_of(root)))


def _object(root: etree._Element) -> None:
    obj = etree.SubElement(signature_of(root), f"{{{DS}}}Object")
    obj.append(copy.deepcopy(root[0]))


def _foreign_in_keyinfo(root: etree._Element) -> None:
    key_info = signature_of(root).find("ds:KeyInfo", NS)
    assert key_info is not None
    key_info.append(copy.deepcopy(root[0]))


def _add_transform(uri: str, body: str = "") -> Callable[[etree._Element], object]:
    def change(root: etree._Element) -> None:
        transforms = signature_of(root).find("ds:SignedInfo/ds:Reference/ds:Transforms", NS)
        assert transforms is not None
        transform = etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=uri)
        if body:
            etree.SubElement(transform, f"{{{DS}}}XPath").text = body

    return change


def _drop_transforms(root: etree._Element) -> None:
    transforms = signature_of(root).find("ds:SignedInfo/ds:Reference/ds:Transforms", NS)
    assert transforms is not None
    transforms.getparent().remove(transforms)  # type: ignore[union-attr]


def _text_after_signature(root: etree._Element) -> None:
    signature_of(root).tail = "unsigned"


def _change_value(root: etree._Element) -> None:
    value = signature_of(root).find("ds:SignatureValue", NS)
    assert value is not None
    assert value.text is not None
    raw = bytearray(base64.b64decode(value.text))
    raw[5] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()


def _set_text(root: etree._Element, path: str, text: str, *, append: bool = False) -> None:
    element = signature_of(root).find(path, NS)
    assert element is not None
    element.text = (element.text or "") + text if append else text


def _unused_bits(root: etree._Element) -> None:
    """Flip an unused bit of DigestValue: the same digest, spelled in another way."""
    element = signature_of(root).find("ds:SignedInfo/ds:Reference/ds:DigestValue", NS)
    assert element is not None
    text = element.text or ""
    assert text.endswith("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = text.rstrip("=")[-1]
    flipped = alphabet[alphabet.index(last) ^ 1]
    changed = text[: len(text.rstrip("=")) - 1] + flipped + text[len(text.rstrip("=")) :]
    assert base64.b64decode(changed) == base64.b64decode(text)
    element.text = changed


def _remove_signature(root: etree._Element) -> None:
    root.remove(signature_of(root))


_SIGNED_INFO = "ds:Signature/ds:SignedInfo"
ATTACKS: dict[str, tuple[Callable[[etree._Element], object], str]] = {
    "one character of a signed text": (_change_text, "signature.digest-mismatch"),
    "an attribute added": (
        lambda root: root[0][0].set("schemeID", "x"),
        "signature.digest-mismatch",
    ),
    "text after the signature": (_text_after_signature, "signature.digest-mismatch"),
    "second SPSExchangedDocument (wrapping)": (_second_document, "signature.duplicated-part"),
    "foreign element in KeyInfo": (_foreign_in_keyinfo, "signature.unsigned-content"),
    "signature moved below the root": (_move_signature, "signature.misplaced"),
    "reference to an element": (_reference_to_element, "signature.reference-uri"),
    "two references": (_two_references, "signature.references"),
    "two signatures": (_two_signatures, "signature.multiple"),
    "no signature": (_remove_signature, "signature.missing"),
    "rsa-sha1 signature method": (
        set_algorithm(_SIGNED_INFO + "/ds:SignatureMethod", DS + "rsa-sha1"),
        "signature.sha1",
    ),
    "sha1 digest": (
        set_algorithm(_SIGNED_INFO + "/ds:Reference/ds:DigestMethod", DS + "sha1"),
        "signature.sha1",
    ),
    "hmac signature method": (
        set_algorithm(
            _SIGNED_INFO + "/ds:SignatureMethod",
            "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
        ),
        "signature.algorithm",
    ),
    "md5 digest": (
        set_algorithm(
            _SIGNED_INFO + "/ds:Reference/ds:DigestMethod",
            "http://www.w3.org/2001/04/xmldsig-more#md5",
        ),
        "signature.digest-algorithm",
    ),
    "C14N 1.1": (
        set_algorithm(
            _SIGNED_INFO + "/ds:CanonicalizationMethod", "http://www.w3.org/2006/12/xml-c14n11"
        ),
        "signature.c14n",
    ),
    "XSLT transform": (
        _add_transform("http://www.w3.org/TR/1999/REC-xslt-19991116"),
        "signature.transform",
    ),
    "XPath transform": (
        _add_transform("http://www.w3.org/TR/1999/REC-xpath-19991116", "not(ancestor::x)"),
        "signature.transform",
    ),
    "no enveloped-signature transform": (_drop_transforms, "signature.transform"),
    "changed signature value": (_change_value, "signature.bad-value"),
    "no KeyInfo": (
        lambda root: signature_of(root).remove(signature_of(root)[2]),
        "signature.certificate",
    ),
    "unreadable certificate": (
        lambda root: _set_text(root, "ds:KeyInfo/ds:X509Data/ds:X509Certificate", "AAAA"),
        "signature.certificate",
    ),
    "not base64": (
        lambda root: _set_text(root, "ds:SignatureValue", "*", append=True),
        "signature.malformed",
    ),
    "non-canonical base64 (same bytes, other text)": (_unused_bits, "signature.malformed"),
    "ds:Object beside SignedInfo": (_object, "signature.unsigned-content"),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_refused(signed: bytes, attack: str) -> None:
    """Each way of making a verifier approve other bytes is refused, with its own code."""
    change, code = ATTACKS[attack]
    check = verify_enveloped(mutate(signed, change))
    assert not check.intact
    assert code in codes(check), check.findings
    assert all(f.area is Area.SIGNATURE for f in check.findings)


def test_every_attack_code_is_declared() -> None:
    """The codes the attacks meet are in the module's table (for greenlane.codes)."""
    assert {code for _, code in ATTACKS.values()} <= {
        c for c in CODES if c.startswith(("signature.", "policy."))
    }


def test_swapped_certificate_is_refused(signed: bytes, corridor_pki: CorridorPki) -> None:
    """An attacker's certificate put in KeyInfo does not carry the signer's signature."""
    other = corridor_pki.signer("CO", agency="attacker")

    def swap(root: etree._Element) -> None:
        element = signature_of(root).find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
        assert element is not None
        element.text = base64.b64encode(other.certificate.public_bytes(Encoding.DER)).decode()

    check = verify_enveloped(mutate(signed, swap))
    assert not check.intact
    assert codes(check)[-1] in ("signature.bad-value", "signature.key-algorithm")


def test_signed_by_an_attacker_over_a_part_is_refused(
    plain: bytes, corridor_pki: CorridorPki
) -> None:
    """A valid signature over one element (URI="#id"), as signxml makes it, is not ours."""
    attacker = corridor_pki.signer("CO", Algorithm.RS256, agency="part-signer")
    root = etree.fromstring(plain)
    root[0].set("Id", "doc")
    signed = XMLSigner(c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0).sign(
        root, key=attacker.private_key, cert=[attacker.certificate], reference_uri="#doc"
    )
    assert codes(verify_enveloped(etree.tostring(signed))) == ["signature.reference-uri"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "xml.empty"),
        (b"<a><b></a>", "xml.malformed"),
        (
            b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
            "xml.external-entity",
        ),
    ],
)
def test_unreadable_input_is_a_finding(data: bytes, code: str) -> None:
    """Hostile or broken XML comes back as the hardened reader's finding, never an exception."""
    check = verify_enveloped(data)
    assert not check.intact
    assert codes(check) == [code]


# --- trust policy -------------------------------------------------------------------------------


def test_unknown_key_is_not_trusted(signed: bytes) -> None:
    """An intact signature by a key nobody registered is refused."""
    decision = judge_trust(verify_enveloped(signed), CorridorPki(), recorded_at=RECORDED)
    assert [f.code for f in decision.findings] == ["policy.unknown-key"]


def test_expired_certificate_is_not_trusted(plain: bytes, corridor_pki: CorridorPki) -> None:
    """A registered key whose certificate expired before the document was recorded."""
    signer = corridor_pki.signer("CO", agency="co-short", validity=timedelta(hours=1))
    corridor_pki.register(signer)
    check = verify_enveloped(sign_enveloped(plain, signer))
    assert check.intact
    decision = judge_trust(check, corridor_pki, recorded_at=T0 + timedelta(days=1))
    assert [f.code for f in decision.findings] == ["policy.certificate-not-valid"]
    assert "when recorded" in decision.findings[0].message


def test_revoked_key_is_not_trusted(plain: bytes, corridor_pki: CorridorPki) -> None:
    signer = corridor_pki.signer("CO", agency="co-revoked")
    corridor_pki.register(signer, revoked_at=T0)
    decision = judge_trust(
        verify_enveloped(sign_enveloped(plain, signer)), corridor_pki, recorded_at=RECORDED
    )
    assert [f.code for f in decision.findings] == ["policy.key-revoked"]


def test_key_not_yet_published_is_not_trusted(plain: bytes, corridor_pki: CorridorPki) -> None:
    signer = corridor_pki.signer("CO", agency="co-late")
    corridor_pki.register(signer, published_at=RECORDED + timedelta(days=1))
    decision = judge_trust(
        verify_enveloped(sign_enveloped(plain, signer)), corridor_pki, recorded_at=RECORDED
    )
    assert [f.code for f in decision.findings] == ["policy.key-not-valid"]


def test_wrong_role_is_not_trusted(plain: bytes, corridor_pki: CorridorPki) -> None:
    signer = corridor_pki.signer("CO", agency="co-customs")
    corridor_pki.register(signer, roles=frozenset({Role.CUSTOMS}))
    decision = judge_trust(
        verify_enveloped(sign_enveloped(plain, signer)),
        corridor_pki,
        recorded_at=RECORDED,
        role=Role.NPPO,
    )
    assert [f.code for f in decision.findings] == ["policy.wrong-role"]


def test_signer_of_another_country_is_not_trusted(plain: bytes, corridor_pki: CorridorPki) -> None:
    """A registered Azerbaijani key cannot vouch for a certificate exported from Colombia."""
    signer = corridor_pki.signer("AZ", agency="az-fsa")
    corridor_pki.register(signer)
    decision = judge_trust(
        verify_enveloped(sign_enveloped(plain, signer)), corridor_pki, recorded_at=RECORDED
    )
    assert [f.code for f in decision.findings] == ["policy.country-mismatch"]
    assert "registered key" in decision.findings[0].message


def test_broken_signature_is_never_trusted(signed: bytes, corridor_pki: CorridorPki) -> None:
    """A registered key does not rescue a changed document."""
    check = verify_enveloped(mutate(signed, ATTACKS["one character of a signed text"][0]))
    decision = judge_trust(check, corridor_pki, recorded_at=RECORDED)
    assert not decision.trusted
    assert decision.findings[0].code == "policy.not-intact"


# --- property: no single-byte change in a signed text goes unnoticed ---------------------------


@cache
def _property_document(corpus: Path) -> tuple[bytes, tuple[tuple[int, int], ...]]:
    """A small signed certificate and the byte spans of its non-blank text nodes.

    KeyInfo is left out: the signature does not cover it, by design (the
    registry, not KeyInfo, says who a key is).
    """
    plain = (corpus / INTERCOM / "SPSCertificate.xml").read_bytes()
    data = sign_enveloped(plain, CorridorPki().signer("CO", agency="co-prop"))
    key_info = (data.index(b"<ds:KeyInfo>"), data.index(b"</ds:KeyInfo>"))
    spans = tuple(
        m.span(1)
        for m in re.finditer(rb">([^<]*\S[^<]*)<", data)
        if not key_info[0] <= m.start(1) < key_info[1]
    )
    return data, spans


@given(st.data())
def test_single_byte_change_in_text_is_never_intact(corpus: Path, data: st.DataObject) -> None:
    """Any one byte changed inside a text node: not intact, or unreadable; never an exception."""
    document, spans = _property_document(corpus)
    start, end = data.draw(st.sampled_from(spans))
    position = data.draw(st.integers(start, end - 1))
    old = document[position]
    new = data.draw(
        st.integers(0, 255).filter(lambda b: b != old and not (old == 0x0A and b == 0x0D))
    )
    changed = document[:position] + bytes([new]) + document[position + 1 :]
    check = verify_enveloped(changed)
    assert not check.intact
    assert check.findings


def test_document_without_time_or_country_cannot_be_judged(corridor_pki: CorridorPki) -> None:
    """No recorded time, no IssueDateTime, no ExportSPSCountry: each is its own reason."""
    signer = corridor_pki.signer("CO", agency="co-bare")
    corridor_pki.register(signer)
    check = verify_enveloped(sign_enveloped(b"<a>text</a>", signer))
    assert check.intact
    decision = judge_trust(check, corridor_pki)
    assert [f.code for f in decision.findings] == ["policy.no-time", "policy.no-export-country"]
    assert decision.time_source is None


def test_commented_certificate_signs_and_verifies(corpus: Path, signer: SoftwareSigner) -> None:
    """Comments are outside what URI="" signs, on both sides, as XML-DSig says."""
    data = (corpus / INTERCOM / "SPSCertificate (Comentarios).XML").read_bytes()
    assert b"<!--" in data
    signed = sign_enveloped(data, signer)
    assert verify_enveloped(signed).intact
    XMLVerifier().verify(signed, x509_cert=signer.certificate)
