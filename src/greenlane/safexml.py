"""The one hardened XML reader for every untrusted input.

lxml with DTD loading, entity resolution and network access off, libxml2's
resource limits left on (never ``huge_tree``), and our own limits on size,
depth and text length. A DOCTYPE is refused, never ignored: it is found in the
prolog before libxml2 parses anything, and checked again on the parsed tree
for encodings the prolog scan cannot read. Every refusal is a
:class:`~greenlane.errors.DocumentRefused` carrying one ``xml.*`` finding; no
libxml2 message that could quote a local file is passed on.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from greenlane.codes import finding
from greenlane.errors import DocumentRefused
from greenlane.settings import LIBXML2_DEPTH_LIMIT, LIBXML2_TEXT_LIMIT, Settings

CHUNK_BYTES = 1 << 16


@dataclass(frozen=True, slots=True)
class XmlLimits:
    max_bytes: int = 16 * 1024 * 1024
    max_depth: int = LIBXML2_DEPTH_LIMIT
    max_text_chars: int = LIBXML2_TEXT_LIMIT

    @classmethod
    def from_settings(cls, settings: Settings) -> XmlLimits:
        """The limits of a settings object, made once per object (asked for per document)."""
        made = _LIMITS.get(id(settings))
        if made is not None and made[0] is settings:
            return made[1]
        limits = cls(settings.xml_max_bytes, settings.xml_max_depth, settings.xml_max_text_chars)
        if len(_LIMITS) >= 16:
            _LIMITS.clear()
        _LIMITS[id(settings)] = (settings, limits)
        return limits


_LIMITS: dict[int, tuple[Settings, XmlLimits]] = {}
"""id(settings) -> (settings, limits); the settings are kept so that an id is never reused."""


DEFAULT_LIMITS = XmlLimits()


@dataclass(frozen=True, slots=True)
class XmlDocument:
    """A parsed document and the exact bytes it was parsed from."""

    raw: bytes
    root: etree._Element

    @property
    def root_qname(self) -> etree.QName:
        return etree.QName(self.root)


_local = threading.local()


def _parser() -> etree.XMLParser:
    """This thread's parser: lxml parsers hold feed state and must not be shared."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        collect_ids=False,
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
        strip_cdata=False,
    )


def _refuse(code: str, message: str, path: str = "") -> DocumentRefused:
    return DocumentRefused(finding(code, message, path))


_ELEMENT_START = re.compile(rb"<[A-Za-z_\x80-\xff]")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_EXTERNAL_ENTITY = re.compile(rb"<!ENTITY\s+(?:%\s+)?\S+\s+(?:SYSTEM|PUBLIC)\b")
_ANY_ENTITY = re.compile(rb"<!ENTITY\b")
_EXTERNAL_ID = re.compile(rb"<!DOCTYPE\s+\S+\s+(?:SYSTEM|PUBLIC)\b", re.IGNORECASE)


def _check_prolog(head: bytes) -> None:
    """Refuse a DOCTYPE found before the first element, naming what it tries to do."""
    element = _ELEMENT_START.search(head)
    prolog = head if element is None else head[: element.start()]
    if b"<!" not in prolog:
        return
    doctype = _DOCTYPE.search(prolog)
    if doctype is None:
        return
    declaration = head[doctype.start() :]
    if _EXTERNAL_ENTITY.search(declaration):
        raise _refuse("xml.external-entity", "DOCTYPE declares an external entity; refused")
    if _ANY_ENTITY.search(declaration):
        raise _refuse("xml.entity-expansion", "DOCTYPE declares entities; refused")
    if _EXTERNAL_ID.match(declaration):
        raise _refuse("xml.external-dtd", "DOCTYPE names an external DTD; refused")
    raise _refuse("xml.doctype", "document has a DOCTYPE; DTDs are refused")


def _looks_binary(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls > len(head) // 100


def _syntax_refusal(exc: etree.XMLSyntaxError, head: bytes) -> DocumentRefused:
    """Map libxml2's error to our code; the message keeps only line and column."""
    message = str(exc.msg or "")
    where = f"line {exc.lineno}, column {exc.offset}" if exc.lineno else ""
    lowered = message.lower()
    if exc.code == 4 and "document is empty" in lowered:
        return _refuse("xml.empty", "the input has no content")
    if exc.code in (4, 9) and _looks_binary(head):
        return _refuse("xml.not-text", "the input is binary data, not XML text")
    if exc.code == 4:
        return _refuse("xml.not-xml", "the input is not XML: no root element found")
    if "amplification" in lowered or ("entity" in lowered and "loop" in lowered):
        return _refuse("xml.entity-expansion", f"entity expansion refused ({where})")
    if "depth" in lowered:
        return _refuse("xml.too-deep", f"elements nested too deeply ({where})")
    if "too long" in lowered or "huge" in lowered:
        return _refuse("xml.text-too-long", f"a text node is too long ({where})")
    if exc.code == 201:  # XML_NS_ERR_UNDEFINED_NAMESPACE
        prefix = re.search(r"prefix (\S+) on", message)
        name = prefix.group(1) if prefix else "?"
        return _refuse(
            "xml.undeclared-prefix", f"namespace prefix {name!r} is not declared ({where})"
        )
    if exc.code in (5, 73, 74, 77) or "premature end" in lowered:
        return _refuse("xml.truncated", f"the document ends before it is complete ({where})")
    if exc.code == 1549 or "network" in lowered or "failed to load" in lowered:
        return _refuse("xml.external-dtd", "the document refers to an external resource; refused")
    # Message text from libxml2 names only syntax, never resource contents.
    return _refuse("xml.malformed", f"not well-formed XML: {message.strip()} ({where})")


@lru_cache(maxsize=8)
def _depth_probe(max_depth: int) -> etree.XPath:
    return etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")


@lru_cache(maxsize=8)
def _text_probe(max_chars: int) -> etree.XPath:
    return etree.XPath(
        f"(//text()[string-length(.) > {max_chars}] | //@*[string-length(.) > {max_chars}])[1]"
    )


def _check_tree(root: etree._Element, limits: XmlLimits) -> None:
    tree = root.getroottree()
    if tree.docinfo.doctype:
        raise _refuse("xml.doctype", "document has a DOCTYPE; DTDs are refused")
    if limits.max_depth < LIBXML2_DEPTH_LIMIT and _depth_probe(limits.max_depth)(tree):
        raise _refuse("xml.too-deep", f"elements nested deeper than {limits.max_depth}")
    if limits.max_text_chars < LIBXML2_TEXT_LIMIT:
        hits = _text_probe(limits.max_text_chars)(tree)
        if isinstance(hits, list) and hits:
            parent = getattr(hits[0], "getparent", lambda: None)()
            path = tree.getpath(parent) if parent is not None else ""
            raise _refuse(
                "xml.text-too-long",
                f"a value is longer than {limits.max_text_chars} characters",
                path,
            )


def _parse(
    run: Callable[[etree.XMLParser], etree._Element], head: Callable[[], bytes]
) -> etree._Element:
    """Run one parse on this thread's parser, turning every libxml2 error into a refusal."""
    try:
        return run(_parser())
    except etree.XMLSyntaxError as exc:
        _local.parser = None
        raise _syntax_refusal(exc, head()) from None
    except BaseException:
        _local.parser = None  # a refusal mid-feed leaves the parser in an unknown state
        raise


def parse_chunks(chunks: Iterable[bytes], limits: XmlLimits = DEFAULT_LIMITS) -> XmlDocument:
    """Parse bytes arriving in pieces, refusing as soon as any limit is crossed."""
    received: list[bytes] = []

    def feed(parser: etree.XMLParser) -> etree._Element:
        size = 0
        for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > limits.max_bytes:
                raise _refuse("xml.too-large", f"the input is larger than {limits.max_bytes} bytes")
            if not received:
                _check_prolog(chunk[:CHUNK_BYTES])
            received.append(chunk)
            parser.feed(chunk)
        if not received:
            raise _refuse("xml.empty", "the input has no content")
        return parser.close()

    root = _parse(feed, lambda: received[0][:4096] if received else b"")
    _check_tree(root, limits)
    return XmlDocument(raw=b"".join(received), root=root)


def parse_bytes(data: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> XmlDocument:
    """Parse a document already in memory (the API path): one call into libxml2."""
    if not data:
        raise _refuse("xml.empty", "the input has no content")
    if len(data) > limits.max_bytes:
        raise _refuse("xml.too-large", f"the input is larger than {limits.max_bytes} bytes")
    _check_prolog(data[:CHUNK_BYTES])
    root = _parse(lambda parser: etree.fromstring(data, parser), lambda: data[:4096])
    _check_tree(root, limits)
    return XmlDocument(raw=data, root=root)


def _read(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk


def parse_stream(stream: BinaryIO, limits: XmlLimits = DEFAULT_LIMITS) -> XmlDocument:
    return parse_chunks(_read(stream), limits)


def parse_file(path: Path, limits: XmlLimits = DEFAULT_LIMITS) -> XmlDocument:
    """Parse a file; OSError (missing, unreadable) is the caller's to report."""
    with path.open("rb") as stream:
        return parse_stream(stream, limits)
