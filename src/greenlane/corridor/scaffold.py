"""A complete working corridor in a folder: the file, both PKIs, both nodes' databases and tokens.

What ``greenlane init corridor --example az-ru DIR`` writes, and what the
demo, the tests and the benchmark start from::

    DIR/corridor.toml            the agreement, the same at both nodes
    DIR/pki/AZ-root.pem          each country's root CA certificate (public)
    DIR/az-node/settings.toml    the node's own settings (GREENLANE_SETTINGS_FILE)
    DIR/az-node/greenlane.db     its SQLite database
    DIR/az-node/keys/            its private keys, and (development!) its root CA key
    DIR/az-node/tokens.json      API tokens of its agencies (mode 0600)

Each node makes its own country's root and keys in its own folder; the two
then exchange what a real pair of countries exchanges: root certificates (in
the corridor file) and the registry updates their roots signed. No node ever
holds the other's private keys.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select

from greenlane.corridor.agreement import load_corridor
from greenlane.errors import ConfigurationError
from greenlane.settings import Settings, load_settings

EXAMPLES = ("az-ru",)
Mode = Literal["push", "pull"]

_AZ_RU = """\
# The AZ -> RU green corridor for fresh produce: written by `greenlane init corridor`.
# The same file at both nodes. Paths are relative to this file.
id = "AZ-RU"
name = "Azerbaijan to Russia, fresh produce"

[countries.AZ]
name = "Azerbaijan"
root_certificate = "pki/AZ-root.pem"

[[countries.AZ.agencies]]
id = "az-fsa"
name = "Food Safety Agency of the Republic of Azerbaijan"
roles = ["nppo", "veterinary"]

[[countries.AZ.agencies]]
id = "az-customs"
name = "State Customs Committee of the Republic of Azerbaijan"
roles = ["customs"]

[[countries.AZ.nodes]]
id = "az-node"
endpoint = "http://127.0.0.1:{az_port}"
delivery = "{az_delivery}"   # how this node receives: "push" (partners POST to it) or "pull"

[countries.RU]
name = "Russian Federation"
root_certificate = "pki/RU-root.pem"

[[countries.RU.agencies]]
id = "ru-rsn"
name = "Federal Service for Veterinary and Phytosanitary Surveillance (Rosselkhoznadzor)"
roles = ["nppo", "veterinary"]

[[countries.RU.agencies]]
id = "ru-fcs"
name = "Federal Customs Service of the Russian Federation"
roles = ["customs"]

[[countries.RU.nodes]]
id = "ru-node"
endpoint = "http://127.0.0.1:{ru_port}"
delivery = "{ru_delivery}"
"""


@dataclass(frozen=True, slots=True)
class Scaffold:
    directory: Path
    corridor_file: Path
    nodes: dict[str, Path]
    """Node id -> its folder."""

    def settings(self, node: str, **overrides: Any) -> Settings:
        return node_settings(self.nodes[node], **overrides)

    def tokens(self, node: str) -> dict[str, str]:
        """Agency id -> API token, for the agencies of ``node``'s country."""
        data: dict[str, str] = json.loads((self.nodes[node] / "tokens.json").read_text())
        return data


def node_settings(node_dir: Path, **overrides: Any) -> Settings:
    """The settings in a node folder's settings.toml, with ``overrides`` on top."""
    values = tomllib.loads((node_dir / "settings.toml").read_text(encoding="utf-8"))
    return load_settings(**{**values, **overrides})


def corridor_text(
    *, ports: tuple[int, int] = (8401, 8402), delivery: tuple[Mode, Mode] = ("push", "push")
) -> str:
    """The az-ru example's corridor file, for nodes on these loopback ports."""
    return _AZ_RU.format(
        az_port=ports[0], ru_port=ports[1], az_delivery=delivery[0], ru_delivery=delivery[1]
    )


def _settings_text(node_dir: Path, corridor_file: Path, node: str, passphrase: str | None) -> str:
    lines = [
        f"# Settings of node {node} (GREENLANE_SETTINGS_FILE); see docs/configuration.md.",
        f'node_id = "{node}"',
        f'corridor_file = "{corridor_file}"',
        f'database_url = "sqlite:///{node_dir / "greenlane.db"}"',
        f'key_dir = "{node_dir / "keys"}"',
    ]
    if passphrase is not None:
        lines.append(f'key_passphrase = "{passphrase}"')
    return "\n".join(lines) + "\n"


def write_example(
    directory: Path,
    example: str = "az-ru",
    *,
    ports: tuple[int, int] = (8401, 8402),
    delivery: tuple[Mode, Mode] = ("push", "push"),
    passphrase: str | None = None,
    now: datetime | None = None,
) -> Scaffold:
    """Write a working two-node corridor into ``directory`` (which must be empty or new)."""
    from greenlane.exchange.agencies import create_token
    from greenlane.store import migrate
    from greenlane.store.engine import engine_from_settings, session_factory
    from greenlane.store.models import RegistryUpdate
    from greenlane.trust import lifecycle, registry, updates

    if example not in EXAMPLES:
        raise ConfigurationError(
            f"no example {example!r} (there is {', '.join(EXAMPLES)})", code="config.invalid"
        )
    directory = directory.resolve()
    if directory.exists() and any(directory.iterdir()):
        raise ConfigurationError(
            f"{directory} is not empty: init writes a new corridor", code="config.invalid"
        )
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    corridor_file = directory / "corridor.toml"
    corridor_file.write_text(corridor_text(ports=ports, delivery=delivery), encoding="utf-8")
    corridor = load_corridor(corridor_file)
    (directory / "pki").mkdir()
    nodes = {
        node.id: directory / node.id
        for country in corridor.countries.values()
        for node in country.nodes
    }
    roots: dict[str, lifecycle.RootCA] = {}
    for node, node_dir in nodes.items():
        node_dir.mkdir()
        (node_dir / "settings.toml").write_text(
            _settings_text(node_dir, corridor_file, node, passphrase), encoding="utf-8"
        )
        country = corridor.country_of(node)
        assert country is not None
        root = lifecycle.create_root_ca(
            node_dir / "keys", country, corridor.countries[country].name, passphrase, now
        )
        target = corridor.root_certificate_path(country)
        assert target is not None
        target.write_bytes(lifecycle.root_paths(node_dir / "keys", country)[1].read_bytes())
        roots[node] = root
    published: dict[str, list[tuple[bytes, bytes]]] = {}
    for node, node_dir in nodes.items():
        settings = node_settings(node_dir)
        engine = engine_from_settings(settings)
        migrate.upgrade(engine)
        country = corridor.country_of(node)
        assert country is not None
        with session_factory(engine)() as session, session.begin():
            registry.sync_corridor(session, corridor)
            lifecycle.init_country(
                session, country, roots[node], lifecycle.provider_from_settings(settings), now
            )
            published[country] = [
                (row.body, row.signature)
                for row in session.scalars(
                    select(RegistryUpdate)
                    .where(RegistryUpdate.country == country)
                    .order_by(RegistryUpdate.sequence)
                )
            ]
            tokens = {
                agency.id: create_token(session, agency.id, now, label="init corridor")
                for agency in corridor.countries[country].agencies
            }
        engine.dispose()
        token_file = node_dir / "tokens.json"
        token_file.write_text(json.dumps(tokens, indent=2) + "\n", encoding="utf-8")
        token_file.chmod(0o600)
    for node, node_dir in nodes.items():
        engine = engine_from_settings(node_settings(node_dir))
        ours = corridor.country_of(node)
        with session_factory(engine)() as session, session.begin():
            for country, entries in published.items():
                if country == ours:
                    continue
                for body, signature in entries:
                    updates.apply_update(session, body, signature, recorded_at=now)
        engine.dispose()
    return Scaffold(directory, corridor_file, nodes)
