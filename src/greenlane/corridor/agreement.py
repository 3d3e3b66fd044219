"""The corridor file: who takes part in a corridor, as both countries agreed it.

One TOML file, the same at both nodes: the countries, each with the path of
its root CA certificate (the only thing a partner's trust is anchored on),
its agencies with their roles, and its nodes with their endpoints. Keys are
not in it: they are issued by each country's root and travel as signed
registry updates. Nothing here is specific to one pair of countries.

    id = "AZ-RU"
    name = "Azerbaijan to Russia, fresh produce"

    [countries.AZ]
    name = "Azerbaijan"
    root_certificate = "pki/AZ-root.pem"     # relative to this file

    [[countries.AZ.agencies]]
    id = "az-fsa"
    name = "Food Safety Agency of the Republic of Azerbaijan"
    roles = ["nppo", "veterinary"]

    [[countries.AZ.nodes]]
    id = "az-node"
    endpoint = "https://greenlane.az.example:8443"
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from greenlane.errors import ConfigurationError
from greenlane.trust.keys import Role

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgencyEntry(_Strict):
    id: Identifier
    name: str = Field(min_length=1, max_length=300)
    roles: tuple[Role, ...] = Field(min_length=1)


class NodeEntry(_Strict):
    id: Identifier
    endpoint: str = Field(pattern=r"^https?://", max_length=500)
    tls_identity: str | None = Field(default=None, max_length=500)
    """The name or certificate fingerprint the node's TLS server presents."""
    delivery: Literal["push", "pull"] = "push"
    """How this node receives: partners ``push`` to its endpoint, or it ``pull``s from
    theirs (a node that accepts no inbound connections)."""


class CountryEntry(_Strict):
    name: str = Field(min_length=1, max_length=200)
    root_certificate: Path | None = None
    agencies: tuple[AgencyEntry, ...] = ()
    nodes: tuple[NodeEntry, ...] = ()


class Corridor(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str = ""
    countries: dict[CountryCode, CountryEntry] = Field(min_length=1)
    path: Path | None = Field(default=None, exclude=True)
    """Where the file was read from: relative paths inside it are relative to its folder."""

    def digest(self) -> str:
        """SHA-256 of the agreement as loaded (canonical JSON), for the evidence log."""
        data = self.model_dump(mode="json")
        return hashlib.sha256(rfc8785.dumps(data)).hexdigest()

    def root_certificate_path(self, country: str) -> Path | None:
        entry = self.countries[country].root_certificate
        if entry is None or entry.is_absolute() or self.path is None:
            return entry
        return self.path.parent / entry

    def country_of(self, participant: str) -> str | None:
        """The country of an agency or node id, or None when the corridor has no such one."""
        for code, country in self.countries.items():
            if any(a.id == participant for a in country.agencies) or any(
                n.id == participant for n in country.nodes
            ):
                return code
        return None


def load_corridor(path: Path) -> Corridor:
    """Read and check a corridor file; every problem is one ConfigurationError."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"{path}: no such corridor file", code="config.file-missing"
        ) from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{path}: {exc}", code="config.corridor-invalid") from exc
    try:
        corridor = Corridor.model_validate({**data, "path": path})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"{path}: {problems}", code="config.corridor-invalid") from exc
    seen: dict[str, str] = {}
    for code, country in corridor.countries.items():
        for participant in [a.id for a in country.agencies] + [n.id for n in country.nodes]:
            if participant in seen:
                raise ConfigurationError(
                    f"{path}: participant id {participant!r} appears twice "
                    f"({seen[participant]} and {code})",
                    code="config.corridor-invalid",
                )
            seen[participant] = code
    return corridor
