"""One typed settings object for the whole node, checked at start.

Values come from, highest priority first: keyword arguments, ``GREENLANE_*``
environment variables, the TOML file named by ``GREENLANE_SETTINGS_FILE``, and
the defaults below. The ``development`` profile runs with the defaults and says
loudly what is unsafe about them; ``production`` refuses to start with them.
Every field is documented in ``docs/configuration.md`` (a test keeps it so).
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from greenlane.errors import ConfigurationError

DEVELOPMENT_SECRET = "development-only-secret-do-not-use-in-production"  # noqa: S105
LIBXML2_TEXT_LIMIT = 10_000_000
"""libxml2 refuses longer text nodes unless XML_PARSE_HUGE is set, which we never set."""
LIBXML2_DEPTH_LIMIT = 256
"""libxml2 refuses deeper nesting, for the same reason; a lower limit costs a check per document."""

SETTINGS_FILE_ENV = "GREENLANE_SETTINGS_FILE"


class Settings(BaseSettings):
    """The node's configuration; see docs/configuration.md for each field."""

    model_config = SettingsConfigDict(
        env_prefix="GREENLANE_",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    profile: Literal["development", "production"] = "development"
    settings_file: Path | None = None
    database_url: str = "sqlite:///greenlane.db"
    database_echo: bool = False
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    xml_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    xml_max_depth: int = Field(default=LIBXML2_DEPTH_LIMIT, ge=8, le=LIBXML2_DEPTH_LIMIT)
    xml_max_text_chars: int = Field(default=LIBXML2_TEXT_LIMIT, ge=1024, le=LIBXML2_TEXT_LIMIT)
    sps_schema_dir: Path | None = None
    sps_clock_skew_seconds: int = Field(default=300, ge=0, le=86400)
    corridor_file: Path | None = None
    node_id: str | None = None
    key_dir: Path = Path("var/keys")
    key_passphrase: SecretStr | None = None
    signing_provider: Literal["software", "pkcs11"] = "software"
    pkcs11_module: Path | None = None
    pkcs11_token_label: str | None = None
    pkcs11_pin: SecretStr | None = None
    envelope_max_bytes: int = Field(default=8 * 1024 * 1024, ge=4096, le=256 * 1024 * 1024)
    delivery_max_attempts: int = Field(default=12, ge=1, le=1000)
    delivery_max_age_seconds: int = Field(default=86400, ge=1)
    delivery_backoff_seconds: float = Field(default=0.5, gt=0, le=3600)
    delivery_backoff_max_seconds: float = Field(default=300.0, gt=0, le=86400)
    delivery_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    delivery_lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    pull_interval_seconds: float = Field(default=2.0, gt=0, le=3600)
    webhook_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    registry_sync_seconds: float = Field(default=30.0, gt=0, le=86400)
    checkpoint_seconds: float = Field(default=60.0, gt=0, le=86400)
    tls_enabled: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(SETTINGS_FILE_ENV)
        if path:
            if not Path(path).is_file():
                raise ConfigurationError(
                    f"{SETTINGS_FILE_ENV}={path}: no such file", code="config.file-missing"
                )
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> Settings:
        # A claim must outlive the longest attempt, or a second worker could take an
        # envelope that is still being sent.
        if self.delivery_lease_seconds < 2 * self.delivery_timeout_seconds:
            raise PydanticCustomError(
                "lease_too_short",
                "delivery_lease_seconds ({lease}) must be at least twice "
                "delivery_timeout_seconds ({timeout})",
                {"lease": self.delivery_lease_seconds, "timeout": self.delivery_timeout_seconds},
            )
        return self

    @model_validator(mode="after")
    def _production_refuses_unsafe(self) -> Settings:
        if self.profile == "production":
            problems = self.unsafe_values()
            if problems:
                raise PydanticCustomError(
                    "unsafe_in_production",
                    "the production profile refuses: {problems}",
                    {"problems": "; ".join(problems)},
                )
        return self

    def unsafe_values(self) -> list[str]:
        """What would be unsafe in production about these values (empty when none)."""
        problems = []
        secret = self.secret_key.get_secret_value()
        if secret == DEVELOPMENT_SECRET:
            problems.append("GREENLANE_SECRET_KEY is the development placeholder")
        elif len(secret) < 32:
            problems.append("GREENLANE_SECRET_KEY is shorter than 32 characters")
        if self.database_echo:
            problems.append("GREENLANE_DATABASE_ECHO logs every statement and its data")
        if self.signing_provider == "software" and self.key_passphrase is None:
            problems.append("GREENLANE_KEY_PASSPHRASE is unset: private keys are kept unencrypted")
        if not self.tls_enabled:
            problems.append("GREENLANE_TLS_ENABLED is off: nodes would talk without mutual TLS")
        if self.log_level == "DEBUG":
            problems.append("GREENLANE_LOG_LEVEL=DEBUG may write personal data to the logs")
        return problems

    def warnings(self) -> list[str]:
        """Loud development-profile warnings: what production would refuse."""
        if self.profile != "development":
            return []
        return [f"development profile: {p}" for p in self.unsafe_values()]

    @cached_property
    def sps_clock_skew(self) -> timedelta:
        """GREENLANE_SPS_CLOCK_SKEW_SECONDS as a timedelta, made once (it is read per document)."""
        return timedelta(seconds=self.sps_clock_skew_seconds)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: Any) -> Settings:
    """Build and check the settings, turning every problem into one ConfigurationError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        code = "config.invalid"
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            if error["type"] == "unsafe_in_production":
                code = "config.unsafe-in-production"
                lines.append(error["msg"])
            elif error["type"] == "lease_too_short":
                lines.append(f"GREENLANE_DELIVERY_LEASE_SECONDS: {error['msg']}")
            elif error["type"] == "extra_forbidden":
                lines.append(f"unknown setting {where!r}")
            else:
                lines.append(f"GREENLANE_{where.upper()}: {error['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(lines), code=code) from None
