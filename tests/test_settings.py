"""Settings: sources and their priority, development warnings, production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenlane.errors import ConfigurationError
from greenlane.settings import DEVELOPMENT_SECRET, Settings, load_settings

STRONG = "s" * 40


def test_defaults_run_in_development_with_loud_warnings() -> None:
    """With nothing set, the node runs, and says what production would refuse."""
    settings = load_settings()
    assert settings.profile == "development"
    assert settings.is_sqlite
    assert any("SECRET_KEY" in w for w in settings.warnings())


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """GREENLANE_* environment variables are read and typed."""
    monkeypatch.setenv("GREENLANE_XML_MAX_DEPTH", "32")
    monkeypatch.setenv("GREENLANE_DATABASE_URL", "postgresql+psycopg://u@127.0.0.1/db")
    settings = load_settings()
    assert settings.xml_max_depth == 32
    assert not settings.is_sqlite


def test_file_is_read_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TOML settings file fills in values; an environment variable beats it."""
    path = tmp_path / "greenlane.toml"
    path.write_text('xml_max_depth = 40\nlog_level = "WARNING"\n')
    monkeypatch.setenv("GREENLANE_SETTINGS_FILE", str(path))
    monkeypatch.setenv("GREENLANE_LOG_LEVEL", "ERROR")
    settings = load_settings()
    assert settings.xml_max_depth == 40
    assert settings.log_level == "ERROR"


def test_missing_settings_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A named settings file that is not there stops the start, with its own code."""
    monkeypatch.setenv("GREENLANE_SETTINGS_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert error.value.code == "config.file-missing"


def test_unknown_key_in_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in the settings file is an error, not silently ignored."""
    path = tmp_path / "greenlane.toml"
    path.write_text("xml_max_dept = 40\n")
    monkeypatch.setenv("GREENLANE_SETTINGS_FILE", str(path))
    with pytest.raises(ConfigurationError, match="xml_max_dept") as error:
        load_settings()
    assert error.value.code == "config.invalid"


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong value is reported with the environment variable to fix."""
    monkeypatch.setenv("GREENLANE_XML_MAX_DEPTH", "100000")
    with pytest.raises(ConfigurationError, match="GREENLANE_XML_MAX_DEPTH"):
        load_settings()


def test_production_refuses_the_development_secret() -> None:
    """Production will not start on the placeholder secret."""
    with pytest.raises(ConfigurationError, match="SECRET_KEY") as error:
        load_settings(profile="production")
    assert error.value.code == "config.unsafe-in-production"


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"secret_key": "short"}, "shorter than 32"),
        ({"database_echo": True}, "DATABASE_ECHO"),
        ({"log_level": "DEBUG"}, "LOG_LEVEL"),
        ({"tls_enabled": False}, "TLS_ENABLED"),
    ],
)
def test_production_refuses_unsafe_values(override: dict[str, object], complaint: str) -> None:
    """Each unsafe value is refused in production, naming what is wrong."""
    values: dict[str, object] = {
        "profile": "production",
        "secret_key": STRONG,
        "tls_enabled": True,
        **override,
    }
    with pytest.raises(ConfigurationError, match=complaint):
        load_settings(**values)


def test_production_with_safe_values_starts_without_warnings() -> None:
    """A properly configured production node starts and warns about nothing."""
    settings = load_settings(
        profile="production", secret_key=STRONG, key_passphrase=STRONG, tls_enabled=True
    )
    assert settings.warnings() == []
    assert settings.secret_key.get_secret_value() == STRONG


def test_secret_is_not_shown_in_repr() -> None:
    """The secret never appears when settings are printed or logged."""
    assert DEVELOPMENT_SECRET not in repr(Settings())


def test_production_refuses_unencrypted_software_keys() -> None:
    """Software private keys need a passphrase in production; a PKCS#11 token does not."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(profile="production", secret_key=STRONG)
    assert caught.value.code == "config.unsafe-in-production"
    assert "GREENLANE_KEY_PASSPHRASE" in caught.value.message
    load_settings(
        profile="production", secret_key=STRONG, signing_provider="pkcs11", tls_enabled=True
    )


def test_a_delivery_lease_shorter_than_two_timeouts_is_refused() -> None:
    """A claim that could expire while its attempt still runs is refused, naming the setting."""
    with pytest.raises(ConfigurationError, match="GREENLANE_DELIVERY_LEASE_SECONDS") as caught:
        load_settings(delivery_timeout_seconds=20, delivery_lease_seconds=30)
    assert caught.value.code == "config.invalid"
    assert load_settings(delivery_timeout_seconds=15).delivery_lease_seconds == 30
