"""The optional official-XSD check: findings in area schema, loaded once, off when unset."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from greenlane.errors import ConfigurationError
from greenlane.findings import Area
from greenlane.sps.structure import PATH_NAMESPACES
from greenlane.sps.xsd import check_schema, load_schema
from tests.conftest import CORPUS
from tests.sps.xsd_oracle import SCHEMA_DIR

MATTILSYNET = CORPUS / "ephyto" / "mattilsynet" / "SPSCertificateContent.xml"
VALID = CORPUS / "ephyto" / "agrocalidad" / "491412333BO.xml"


def test_each_xsd_error_is_a_schema_finding_pointing_at_its_element() -> None:
    """The misordered fixture gets schema.invalid findings whose paths resolve to lines 84, 127."""
    root = etree.parse(str(MATTILSYNET)).getroot()
    findings = check_schema(root, SCHEMA_DIR)
    assert {f.code for f in findings} == {"schema.invalid"}
    assert {f.area for f in findings} == {Area.SCHEMA}
    lines = []
    for f in findings:
        hits = root.getroottree().xpath(f.path, namespaces=PATH_NAMESPACES)
        assert isinstance(hits, list)
        lines.append(hits[0].sourceline)  # type: ignore[union-attr]
    assert lines == [84, 127]


def test_a_valid_certificate_has_no_schema_findings_and_the_schema_loads_once() -> None:
    """A corpus certificate the XSD accepts gives nothing; the schema object is cached."""
    assert check_schema(etree.parse(str(VALID)).getroot(), SCHEMA_DIR) == []
    assert load_schema(SCHEMA_DIR.resolve()) is load_schema(SCHEMA_DIR.resolve())


def test_without_the_setting_the_check_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """GREENLANE_SPS_SCHEMA_DIR unset means no XSD is read and no finding is made."""
    monkeypatch.delenv("GREENLANE_SPS_SCHEMA_DIR", raising=False)
    assert check_schema(etree.parse(str(MATTILSYNET)).getroot()) == []


def test_the_setting_is_read_when_no_directory_is_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    """check_schema(root) follows GREENLANE_SPS_SCHEMA_DIR from the settings."""
    monkeypatch.setenv("GREENLANE_SPS_SCHEMA_DIR", str(SCHEMA_DIR))
    assert len(check_schema(etree.parse(str(MATTILSYNET)).getroot())) == 2


def test_a_directory_without_the_schema_is_a_configuration_error(tmp_path: Path) -> None:
    """Pointing the setting at the wrong directory stops with config.invalid, not a crash."""
    with pytest.raises(ConfigurationError) as raised:
        check_schema(etree.parse(str(VALID)).getroot(), tmp_path)
    assert raised.value.code == "config.invalid"
