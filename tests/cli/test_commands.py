"""The command line: conventions of exit status and JSON, and the db commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from greenlane.cli import validate as validate_command
from greenlane.cli.app import main

from .run import greenlane


def test_version() -> None:
    """--version prints the package version and exits 0."""
    run = greenlane("--version")
    assert run.status == 0
    assert run.stdout.startswith("greenlane 0.")


def test_corpus_validates_with_json(corpus: Path) -> None:
    """The Andean corpus certificates are valid; the JSON has one object per input, in order."""
    paths = sorted(
        str(p)
        for folder in ("agrocalidad", "intercom")
        for p in (corpus / "ephyto" / folder).iterdir()
    )
    run = greenlane("validate", "--json", *paths)
    assert run.status == 0, run.stdout
    results = json.loads(run.stdout)
    assert [r["path"] for r in results] == paths
    for result in results:
        assert set(result) == {"path", "valid", "document_type", "id", "findings"}
        assert result["valid"] is True
        assert result["document_type"] == "SPSCertificate"
    assert "491412333BO" in {r["id"] for r in results}


def test_mixed_inputs_exit_1_and_report_each(corpus: Path, tmp_path: Path) -> None:
    """One bad file among good ones makes exit 1; every file still gets its verdict."""
    bad = tmp_path / "bad.xml"
    bad.write_text("<a>")
    good = corpus / "ephyto/agrocalidad/491412333BO.xml"
    run = greenlane("validate", str(good), str(bad))
    assert run.status == 1
    assert "valid" in run.stdout
    assert "xml.truncated" in run.stdout


def test_missing_file_is_exit_2(tmp_path: Path) -> None:
    """A file that does not exist is unreadable input: exit 2, code input.not-found."""
    run = greenlane("validate", "--json", str(tmp_path / "absent.xml"))
    assert run.status == 2
    [result] = json.loads(run.stdout)
    assert result["findings"][0]["code"] == "input.not-found"


def test_directory_is_unreadable_input(tmp_path: Path) -> None:
    """A directory given as a document is exit 2 with input.unreadable."""
    run = greenlane("validate", "--json", str(tmp_path))
    assert run.status == 2
    assert json.loads(run.stdout)[0]["findings"][0]["code"] == "input.unreadable"


def test_usage_error_is_exit_2() -> None:
    """An unknown option is a usage error."""
    assert greenlane("validate", "--no-such-option", "x").status == 2


def test_bad_configuration_is_exit_2_with_code(tmp_path: Path) -> None:
    """A refused setting stops the command with exit 2 and the error's code."""
    run = greenlane("validate", "x.xml", env={"GREENLANE_PROFILE": "production"})
    assert run.status == 2
    assert "config.unsafe-in-production" in run.stderr
    assert "Traceback" not in run.stderr


def test_unreachable_database_is_exit_2_with_code(tmp_path: Path) -> None:
    """A database that cannot be opened is reported with db.unavailable, not a traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    url = f"sqlite:///{blocker}/inside/a/file.db"
    run = greenlane("db", "upgrade", env={"GREENLANE_DATABASE_URL": url})
    assert run.status == 2
    assert "[db.unavailable]" in run.stderr
    assert "Traceback" not in run.stderr


def test_internal_error_is_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An unforeseen failure is exit 3 with the code `internal`, not a bare crash."""

    def broken(*_args: object) -> None:
        raise RuntimeError("an unforeseen bug")

    monkeypatch.setattr(validate_command, "validate_path", broken)
    monkeypatch.setattr(sys, "argv", ["greenlane", "validate", str(tmp_path / "x.xml")])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 3
    assert "[internal]" in capsys.readouterr().err


def test_db_upgrade_then_check(tmp_path: Path) -> None:
    """db upgrade creates the database; db check then finds no drift."""
    env = {"GREENLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}"}
    upgraded = greenlane("db", "upgrade", env=env)
    assert upgraded.status == 0, upgraded.stderr
    checked = greenlane("db", "check", env=env)
    assert checked.status == 0, checked.stderr
    assert "agree" in checked.stdout


def test_db_check_on_an_empty_database_fails(tmp_path: Path) -> None:
    """A database that was never upgraded is reported as behind: exit 1."""
    env = {"GREENLANE_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    run = greenlane("db", "check", env=env)
    assert run.status == 1
    assert "migrations at" in run.stderr


def test_misordered_certificate_exits_1_pointing_at_the_element(corpus: Path) -> None:
    """Norway's non-conformant certificate fails on structure, at the misordered element."""
    path = corpus / "ephyto/mattilsynet/SPSCertificateContent.xml"
    run = greenlane("validate", "--json", str(path))
    assert run.status == 1
    [result] = json.loads(run.stdout)
    structure = [f for f in result["findings"] if f["area"] == "structure"]
    assert structure[0]["code"] == "structure.order"
    assert structure[0]["path"] == (
        "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:ReferenceSPSReferencedDocument[1]"
    )


def test_show_and_convert_read_the_misordered_certificate(corpus: Path, tmp_path: Path) -> None:
    """show and convert read all of a non-conformant certificate; JSON converts back to XML."""
    path = corpus / "ephyto/mattilsynet/SPSCertificateContent.xml"
    shown = greenlane("show", str(path))
    assert shown.status == 1  # it has error findings, and says so
    assert "findings" in shown.stdout
    as_json = greenlane("convert", str(path), "--to", "json")
    assert as_json.status == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert "#order" in json.dumps(data)
    json_file = tmp_path / "c.json"
    json_file.write_text(as_json.stdout)
    back = greenlane("convert", str(json_file), "--to", "xml")
    assert back.status == 0, back.stderr
    assert back.stdout.startswith("<?xml")
    canonical = greenlane("convert", str(json_file), "--to", "xml", "--canonical")
    assert canonical.status == 1  # text and a note where the schema allows neither
    assert "sps.not-canonical" in canonical.stderr


def test_convert_refuses_bad_json_with_a_code(tmp_path: Path) -> None:
    """Malformed JSON is refused with json.malformed, exit 1."""
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    run = greenlane("convert", str(bad), "--to", "xml")
    assert run.status == 1
    assert "json.malformed" in run.stdout
