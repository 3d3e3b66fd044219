"""The registry of stable finding and error codes.

Every code a user can meet is declared here once, with its area, level and a
one-line meaning; ``docs/codes.md`` lists them all (a test keeps the two equal).
Build findings with :func:`finding` so a code can never drift from its level.
"""

from __future__ import annotations

from dataclasses import dataclass

from greenlane.findings import Area, Finding, Level


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    area: Area
    level: Level
    meaning: str


def _codes(*entries: Code) -> dict[str, Code]:
    table: dict[str, Code] = {}
    for entry in entries:
        if entry.code in table:  # pragma: no cover - guards the table itself
            raise ValueError(f"duplicate code {entry.code}")
        table[entry.code] = entry
    return table


_E = Level.ERROR

CODES: dict[str, Code] = _codes(
    # Input that cannot be read at all (exit status 2).
    Code("input.not-found", Area.XML, _E, "The named file does not exist."),
    Code(
        "input.unreadable",
        Area.XML,
        _E,
        "The file exists but cannot be read (permissions, a directory).",
    ),
    # The hardened XML reader.
    Code("xml.empty", Area.XML, _E, "The input is empty."),
    Code("xml.too-large", Area.XML, _E, "The input is larger than GREENLANE_XML_MAX_BYTES."),
    Code("xml.not-text", Area.XML, _E, "The input is binary data, not text."),
    Code("xml.not-xml", Area.XML, _E, "The input is text but not XML (no root element)."),
    Code("xml.truncated", Area.XML, _E, "The document ends before its root element is closed."),
    Code("xml.malformed", Area.XML, _E, "The document is not well-formed XML."),
    Code(
        "xml.undeclared-prefix", Area.XML, _E, "A namespace prefix is used without being declared."
    ),
    Code("xml.doctype", Area.XML, _E, "The document has a DOCTYPE; DTDs are refused, not ignored."),
    Code(
        "xml.external-dtd",
        Area.XML,
        _E,
        "The DOCTYPE points at an external DTD; it is never loaded.",
    ),
    Code(
        "xml.external-entity",
        Area.XML,
        _E,
        "The DOCTYPE declares an external entity; it is never resolved.",
    ),
    Code(
        "xml.entity-expansion",
        Area.XML,
        _E,
        "The DOCTYPE declares entities (an expansion bomb such as billion laughs).",
    ),
    Code("xml.too-deep", Area.XML, _E, "Elements are nested deeper than GREENLANE_XML_MAX_DEPTH."),
    Code(
        "xml.text-too-long",
        Area.XML,
        _E,
        "A text or attribute value is longer than GREENLANE_XML_MAX_TEXT_CHARS.",
    ),
    Code(
        "xml.unknown-root", Area.XML, _E, "The root element is not a document type greenlane reads."
    ),
    # The JSON form of documents (sps/jsonform.py); path is a JSON pointer.
    Code("json.malformed", Area.STRUCTURE, _E, "The input is not valid JSON."),
    Code("json.type", Area.STRUCTURE, _E, "A JSON value has the wrong type for its field."),
    Code("json.unknown-field", Area.STRUCTURE, _E, "A JSON field names no element or attribute."),
    Code("json.order", Area.STRUCTURE, _E, "#order does not list exactly the elements present."),
    # --- structure: sps/structure.py (add structure.* codes below this line) ---
    Code(
        "structure.missing",
        Area.STRUCTURE,
        _E,
        "A required element is absent (the path names its parent).",
    ),
    Code("structure.unexpected", Area.STRUCTURE, _E, "An element is not allowed where it appears."),
    Code(
        "structure.order",
        Area.STRUCTURE,
        _E,
        "An element the parent allows appears out of the schema's order.",
    ),
    Code(
        "structure.too-many",
        Area.STRUCTURE,
        _E,
        "An element occurs more often than the schema allows.",
    ),
    Code(
        "structure.text",
        Area.STRUCTURE,
        _E,
        "Text appears where only child elements are allowed.",
    ),
    Code(
        "structure.type",
        Area.STRUCTURE,
        _E,
        "A value is not in the lexical space of its XSD type (a decimal, a date-time, ...).",
    ),
    Code(
        "structure.enumeration",
        Area.STRUCTURE,
        _E,
        "A value is not in the code list its type allows.",
    ),
    Code(
        "structure.facet",
        Area.STRUCTURE,
        _E,
        "A value breaks a length, pattern, digits or range facet of its type.",
    ),
    Code("structure.attribute-missing", Area.STRUCTURE, _E, "A required attribute is absent."),
    Code(
        "structure.attribute-unexpected",
        Area.STRUCTURE,
        _E,
        "An attribute is not allowed on its element (xsi:nil included).",
    ),
    Code(
        "structure.attribute-fixed",
        Area.STRUCTURE,
        _E,
        "An attribute differs from the fixed value the schema gives it.",
    ),
    Code(
        "structure.duplicate-id",
        Area.STRUCTURE,
        _E,
        "Two xsd:ID attributes (in the signature) have the same value.",
    ),
    Code(
        "structure.xsi-type",
        Area.STRUCTURE,
        _E,
        "xsi:type names a type other than the element's declared type.",
    ),
    Code(
        "structure.undeclared",
        Area.STRUCTURE,
        _E,
        "An element the signature's strict wildcard admits has no global declaration.",
    ),
    Code(
        "structure.unsupported",
        Area.STRUCTURE,
        _E,
        "A wildcard-admitted element is declared only in a code-list module greenlane lacks.",
    ),
    Code(
        "schema.invalid",
        Area.SCHEMA,
        _E,
        "The official XSD (GREENLANE_SPS_SCHEMA_DIR) rejects the document.",
    ),
    # --- rule and codelist: sps/rules.py (add rule.* and codelist.* codes below this line) ---
    Code(
        "codelist.document-type",
        Area.CODELIST,
        _E,
        "The certificate's TypeCode is not 851, 657, 852 or 853 (UNCL 1001).",
    ),
    Code(
        "codelist.status",
        Area.CODELIST,
        _E,
        "The certificate's StatusCode is not 70, 40, 39 or 41 (UNCL 4405).",
    ),
    Code("codelist.country", Area.CODELIST, _E, "A country ID is not an ISO 3166-1 alpha-2 code."),
    Code(
        "codelist.unit",
        Area.CODELIST,
        _E,
        "A weight or volume unitCode is not a UN/ECE Rec 20 code of the SPS schema.",
    ),
    Code(
        "codelist.hs",
        Area.CODELIST,
        _E,
        "An HS ClassCode has no HS 2022 subheading at its first 6 digits (6 to 10 digits).",
    ),
    Code(
        "codelist.note-subject",
        Area.CODELIST,
        _E,
        "A note's Subject is not an IPPC note subject code.",
    ),
    Code(
        "codelist.location",
        Area.CODELIST,
        Level.WARNING,
        "A location ID is not a UN/LOCODE (for example a bare country code).",
    ),
    Code(
        "rule.issue-date-unparseable",
        Area.RULE,
        _E,
        "The certificate's IssueDateTime is empty or not a date and time.",
    ),
    Code(
        "rule.issue-date-future",
        Area.RULE,
        _E,
        "IssueDateTime is later than now plus GREENLANE_SPS_CLOCK_SKEW_SECONDS.",
    ),
    Code(
        "rule.issue-date-no-zone",
        Area.RULE,
        Level.WARNING,
        "IssueDateTime has no time zone (or no time); it is read as UTC.",
    ),
    Code("rule.trade-line-missing", Area.RULE, _E, "The certificate has no trade line item."),
    Code(
        "rule.sequence",
        Area.RULE,
        _E,
        "Trade line SequenceNumeric values are not 1 to n, each once.",
    ),
    Code(
        "rule.weight-not-positive",
        Area.RULE,
        _E,
        "A net or gross weight is zero, negative or not a number.",
    ),
    Code(
        "rule.volume-not-positive",
        Area.RULE,
        _E,
        "A net or gross volume is zero, negative or not a number.",
    ),
    Code(
        "rule.weight-unit-missing",
        Area.RULE,
        Level.WARNING,
        "A net or gross weight has no unitCode.",
    ),
    Code(
        "rule.volume-unit-missing",
        Area.RULE,
        Level.WARNING,
        "A net or gross volume has no unitCode.",
    ),
    Code("rule.hs-missing", Area.RULE, Level.INFO, "A trade line has no HS classification code."),
    Code(
        "rule.note-too-long",
        Area.RULE,
        _E,
        "A note's content is longer than its IPPC subject allows.",
    ),
    Code(
        "rule.note-type",
        Area.RULE,
        _E,
        "A note's content is not of its subject's type (a date, a number).",
    ),
    Code(
        "rule.replacement-incomplete",
        Area.RULE,
        _E,
        "An ADRP replacement note has no ADRPN naming the replaced certificate.",
    ),
    Code(
        "rule.replacement-orphan",
        Area.RULE,
        _E,
        "ADRPN, ADRPR or ADRD describe a replacement without an ADRP note.",
    ),
    Code(
        "rule.reexport-country-missing",
        Area.RULE,
        _E,
        "A re-export certificate (657) has no ReExportSPSCountry.",
    ),
    Code(
        "rule.reexport-original-missing",
        Area.RULE,
        _E,
        "A re-export certificate (657) does not reference the original certificate.",
    ),
    Code(
        "rule.reexport-notes-on-export",
        Area.RULE,
        Level.WARNING,
        "A phytosanitary certificate for export (851) carries re-export (RPC*) notes.",
    ),
    Code(
        "rule.placeholder",
        Area.RULE,
        Level.WARNING,
        "A name or place is a placeholder such as NULL, N/A or sin dato.",
    ),
    # --- signature and policy: trust/xmldsig.py ---
    Code(
        "signature.missing",
        Area.SIGNATURE,
        _E,
        "The document has no ds:Signature.",
    ),
    Code(
        "signature.multiple",
        Area.SIGNATURE,
        _E,
        "The document has more than one ds:Signature.",
    ),
    Code(
        "signature.misplaced",
        Area.SIGNATURE,
        _E,
        "The ds:Signature is not a child of the document root.",
    ),
    Code(
        "signature.malformed",
        Area.SIGNATURE,
        _E,
        "The ds:Signature lacks a part, has parts out of order, or a value is not base64.",
    ),
    Code(
        "signature.unsigned-content",
        Area.SIGNATURE,
        _E,
        "The ds:Signature carries content it does not sign (ds:Object, foreign elements).",
    ),
    Code(
        "signature.c14n",
        Area.SIGNATURE,
        _E,
        "A canonicalisation method other than C14N 1.0 or exclusive C14N 1.0.",
    ),
    Code(
        "signature.sha1",
        Area.SIGNATURE,
        _E,
        "A signature or digest method using SHA-1.",
    ),
    Code(
        "signature.algorithm",
        Area.SIGNATURE,
        _E,
        "A signature method outside RSA and ECDSA with SHA-256/384/512.",
    ),
    Code(
        "signature.digest-algorithm",
        Area.SIGNATURE,
        _E,
        "A digest method other than SHA-256/384/512.",
    ),
    Code(
        "signature.references",
        Area.SIGNATURE,
        _E,
        "SignedInfo has not exactly one Reference.",
    ),
    Code(
        "signature.reference-uri",
        Area.SIGNATURE,
        _E,
        'The Reference points at a part of the document, not at all of it (URI="").',
    ),
    Code(
        "signature.transform",
        Area.SIGNATURE,
        _E,
        "Transforms other than enveloped-signature followed by at most one C14N.",
    ),
    Code(
        "signature.certificate",
        Area.SIGNATURE,
        _E,
        "KeyInfo has no readable X.509 certificate, or no single signer among several.",
    ),
    Code(
        "signature.key-algorithm",
        Area.SIGNATURE,
        _E,
        "The certificate's key does not fit the signature method (RSA vs EC).",
    ),
    Code(
        "signature.weak-key",
        Area.SIGNATURE,
        _E,
        "An RSA key shorter than 2048 bits.",
    ),
    Code(
        "signature.digest-mismatch",
        Area.SIGNATURE,
        _E,
        "The document's digest differs from the signed one: it changed after signing.",
    ),
    Code(
        "signature.bad-value",
        Area.SIGNATURE,
        _E,
        "The SignatureValue is not the certificate key's signature of SignedInfo.",
    ),
    Code(
        "signature.duplicated-part",
        Area.SIGNATURE,
        _E,
        "The root holds SPSExchangedDocument or SPSConsignment twice: which one is read?",
    ),
    Code(
        "policy.not-intact",
        Area.POLICY,
        _E,
        "No trust without integrity: the signature failed.",
    ),
    Code(
        "policy.unknown-key",
        Area.POLICY,
        _E,
        "The signer's key is not registered (self-signed or foreign certificates included).",
    ),
    Code(
        "policy.key-revoked",
        Area.POLICY,
        _E,
        "The signer's registered key was revoked before the time judged.",
    ),
    Code(
        "policy.key-not-valid",
        Area.POLICY,
        _E,
        "The signer's registered key was not valid at the time judged (lifecycle).",
    ),
    Code(
        "policy.wrong-role",
        Area.POLICY,
        _E,
        "The signer's registered key is not one of an agency with the required role.",
    ),
    Code(
        "policy.certificate-not-valid",
        Area.POLICY,
        _E,
        "The signer's certificate was not valid at the time judged (recorded or issue time).",
    ),
    Code(
        "policy.no-time",
        Area.POLICY,
        _E,
        "No recorded time and no readable IssueDateTime to judge the certificate at.",
    ),
    Code(
        "policy.no-export-country",
        Area.POLICY,
        _E,
        "The certificate names no single export country to match the signer against.",
    ),
    Code(
        "policy.country-mismatch",
        Area.POLICY,
        _E,
        "The signer's country is not the certificate's export country.",
    ),
    Code(
        "exchange.header-mismatch",
        Area.POLICY,
        _E,
        "The envelope header (number, type, status, From) differs from the document it carries.",
    ),
    Code(
        "exchange.duplicate-number",
        Area.POLICY,
        Level.WARNING,
        "A certificate number that arrived before with other content; both are kept.",
    ),
)


_tuple = tuple.__new__


def finding(code: str, message: str, path: str = "") -> Finding:
    """A finding for a registered code; its level and area come from the registry.

    Built with tuple.__new__, skipping the named tuple's keyword-handling
    constructor: the rules make several findings per certificate
    (tests/test_codes.py keeps the two ways equal).
    """
    entry = CODES[code]
    return _tuple(Finding, (entry.level, entry.area, path, code, message))


ERRORS: dict[str, str] = {
    "config.invalid": "A setting has a wrong value or the settings file has an unknown key.",
    "config.file-missing": "GREENLANE_SETTINGS_FILE names a file that does not exist.",
    "config.unsafe-in-production": "The production profile refuses a development default.",
    "config.corridor-missing": "No corridor file: pass --config or set GREENLANE_CORRIDOR_FILE.",
    "config.corridor-invalid": "The corridor file is not valid TOML or breaks its schema.",
    "db.unavailable": "The database cannot be opened or reached (GREENLANE_DATABASE_URL).",
    "db.not-migrated": "The database is behind the code: run `greenlane db upgrade`.",
    "sps.not-canonical": "A certificate cannot be written schema-valid; its findings say why.",
    "trust.algorithm": "A key or signature algorithm outside the allowed list (RSA, EC P-256).",
    "trust.weak-key": "An RSA key shorter than 2048 bits.",
    "trust.key-mismatch": "A certificate that is not for the private key it is paired with.",
    "trust.key-unreadable": "A private key file that cannot be read or decrypted.",
    "trust.key-revoked": "A revoked key: it vouches for nothing recorded after its revocation.",
    "trust.key-not-valid": "A key not valid when the item was recorded (not yet published, "
    "retired past its grace, certificate out of its validity).",
    "trust.key-state": "A lifecycle step the key's state does not allow.",
    "trust.pkcs11-config": "The pkcs11 provider lacks GREENLANE_PKCS11_MODULE, _TOKEN_LABEL or "
    "_PIN.",
    "trust.pkcs11-unavailable": "The PKCS#11 module, token or login is not available (wrong PIN "
    "included).",
    "trust.pkcs11-no-key": "No single key pair on the token has this label, or it cannot sign.",
    "trust.pkcs11-failed": "The token refused an operation (key generation, labelling, signing).",
    "trust.no-root": "The country's root CA certificate or key is not available.",
    "trust.root-exists": "A root CA key already exists where a new one would be made.",
    "trust.root-mismatch": "Another root CA certificate than the one already pinned.",
    "trust.no-signing-key": "The participant has no active key held by this node.",
    "trust.not-issued-by-root": "A certificate not issued by its country's pinned root CA.",
    "trust.participant-exists": "A participant id already in the registry.",
    "trust.participant-invalid": "A participant's id, name, roles or endpoint are malformed.",
    "trust.unknown-country": "A country that is not in the corridor.",
    "trust.unknown-key": "No registered key has this id.",
    "trust.unknown-participant": "No agency or node has this id.",
    "trust.update-not-by-root": "A registry update not signed by its country's root CA.",
    "trust.update-malformed": "A registry update that is not canonical JSON of the known form.",
    "trust.update-replayed": "A registry update (or key) already applied.",
    "trust.update-out-of-order": "A registry update arriving before the one that precedes it.",
    "trust.update-foreign-key": "A registry update changing a key or participant of another "
    "country.",
    "message.malformed": "A message signature that is not a detached JWS over raw bytes.",
    "message.algorithm": "A message signed with an algorithm outside RS256 and ES256.",
    "message.unknown-key": "A message signed by a key the registry does not hold.",
    "message.wrong-sender": "A message signed by a key that is not the sending node's.",
    "message.key-revoked": "A message signed by a key revoked before it was received.",
    "message.key-not-valid": "A message signed by a key not valid when it was received.",
    "message.bad-signature": "A message whose bytes are not the ones signed.",
    "message.time-window": "A sending attempt time too far from the time of receipt.",
    "message.replayed": "A sending attempt received before: a replay.",
    "message.id-reused": "A message id received before with other content.",
    "evidence.malformed": "A checkpoint or bundle that is not the canonical JSON greenlane writes.",
    "evidence.bad-checkpoint": "A checkpoint whose signature or countersignature does not verify.",
    "evidence.history-rewritten": "Log entries that no longer give the root both nodes signed.",
    "evidence.entry-missing": "A log entry deleted: a gap in the sequence.",
    "evidence.entry-modified": "A log entry changed after it was written.",
    "evidence.entry-moved": "A log entry in another entry's place (reordered or inserted).",
    "evidence.state-mismatch": "The stored head of the log is not the head of its entries.",
    "evidence.no-checkpoint": "No countersigned checkpoint covers the entry yet.",
    "evidence.not-found": "No document or log entry with this id.",
    "envelope.malformed": "An envelope not in the canonical JSON form with every header field.",
    "envelope.too-large": "An envelope larger than the node accepts.",
    "envelope.digest-mismatch": "A payload whose SHA-256 is not the one its header names.",
    "envelope.unknown-type": "A document type the corridor does not carry.",
    "envelope.unknown-status": "A certificate status code the corridor does not know.",
    "envelope.wrong-receiver": "An envelope addressed to another node or country.",
    "envelope.wrong-sender": "A signer other than the sender node, or not of the From country.",
    "envelope.id-mismatch": "A signature over another message id than the envelope's.",
    "receipt.malformed": "A receipt that is not the canonical JSON form greenlane writes.",
    "receipt.wrong-node": "A receipt signed by another node than the one it speaks for.",
    "receipt.digest-mismatch": "A receipt naming another envelope digest than the one sent.",
    "receipt.id-mismatch": "A receipt for another message than the one sent.",
    "tls.credentials": "The node's TLS certificate, key or corridor roots cannot be used.",
    "tls.wrong-peer": "The other end of a TLS connection is not the node it must be.",
    "tls.no-client-cert": "A node-to-node request without a client certificate.",
    "config.no-node": "A node id or country that the corridor file does not list as a node.",
    "node.not-a-partner": "A node-to-node request signed by a key that is not a partner node's.",
    "delivery.not-found": "No outbox message (or no envelope for the calling node) with this id.",
    "delivery.not-pending": "An envelope no longer waiting for delivery (fetched after it failed).",
    "delivery.not-failed": "A manual retry of a message that is not in FailedDelivery.",
    "certificate.invalid": "A submitted certificate with errors: its findings say which.",
    "certificate.unreadable": "A submitted certificate that is not readable SPS XML.",
    "certificate.unknown-type": "A certificate type the corridor does not carry.",
    "certificate.wrong-country": "A certificate whose export country is not this node's country.",
    "certificate.no-route": "A certificate whose import country is not a partner in the corridor.",
    "certificate.status": "A status the operation does not issue (a new certificate is status 70).",
    "certificate.number-taken": "A certificate number already issued with other content.",
    "certificate.not-found": "No certificate with this id visible to the agency.",
    "certificate.not-yours": "An agency acting for a country or certificate that is not its own.",
    "certificate.final": "A withdrawn, rejected or replaced certificate: nothing changes it.",
    "certificate.bad-signature": "A submitted certificate signed, but not validly by the agency.",
    "auth.missing": "No `Authorization: Bearer <token>` header.",
    "auth.invalid": "An API token that is unknown or revoked.",
    "idempotency.key-reused": "An Idempotency-Key already used by the agency for another request.",
    "request.invalid": "A request whose parameters or JSON body break the API's schema.",
    "request.not-found": "No such API path.",
    "request.method-not-allowed": "The path exists but not with this HTTP method.",
    "request.too-large": "A request body larger than the endpoint accepts.",
    "request.unsupported-media-type": "A body in a media type the endpoint does not take.",
    "auth.forbidden": "An agency acting outside its roles (customs issuing a phytosanitary one).",
    "subscription.not-found": "No webhook subscription of the agency with this id.",
    "subscription.bad-url": "A webhook URL that is not an absolute http(s) URL with a host.",
    "demo.port-busy": "A port the demo's nodes need is taken on 127.0.0.1: pick others "
    "with --ports.",
    "demo.node-failed": "A demo node exited or did not answer /health in time; its serve.log "
    "says why.",
    "demo.dir-not-empty": "The demo's --dir is a non-empty folder it did not write (it wipes "
    "only its own).",
    "internal": "A bug: the command failed in a way it did not foresee (exit status 3).",
}
"""Codes of errors that stop a command (not findings about a document)."""
