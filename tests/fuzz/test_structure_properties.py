"""Our structural verdict and the official XSD's agree on mutated real certificates.

``make fuzz`` runs this with 20,000 examples (HYPOTHESIS_PROFILE=fuzz); every
mutant is also checked for findings that point at a real element.
"""

from __future__ import annotations

from hypothesis import given
from lxml import etree

from greenlane.findings import has_errors
from greenlane.sps.lexical import builtin_lexical
from greenlane.sps.structure import PATH_NAMESPACES, check_structure
from tests.sps.test_lexical import libxml2_accepts
from tests.sps.test_lexical import near_values as near_builtin_values
from tests.sps.xsd_oracle import xsd_accepts
from tests.strategies import mutated_certificates


@given(mutated_certificates(max_mutations=3))
def test_structure_verdict_agrees_with_the_official_xsd(data: bytes) -> None:
    """Any mix of up to three structural mutations: valid for us exactly when the XSD accepts."""
    root = etree.fromstring(data)
    findings = check_structure(root)
    assert has_errors(findings) != xsd_accepts(data), [f.to_dict() for f in findings]
    for f in findings:
        hits = root.getroottree().xpath(f.path, namespaces=PATH_NAMESPACES)
        assert isinstance(hits, list)
        assert len(hits) == 1, f.path


@given(near_builtin_values())
def test_builtin_lexical_spaces_agree_with_libxml2(case: tuple[str, str]) -> None:
    """Values near valid ones of every built-in we carry get libxml2's verdict."""
    builtin, value = case
    assert builtin_lexical(builtin)(value) == libxml2_accepts(builtin, value), repr(value)
