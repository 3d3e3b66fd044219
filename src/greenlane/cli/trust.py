"""``greenlane participants`` and ``greenlane keys``: the registry and our own keys."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from greenlane.cli.console import err, out, print_json, warn_loudly
from greenlane.cli.database import transaction
from greenlane.errors import ConfigurationError
from greenlane.settings import Settings

if TYPE_CHECKING:
    from greenlane.trust.lifecycle import KeyProvider, RootCA

participants_app = typer.Typer(help="The corridor's countries, agencies and nodes.")
keys_app = typer.Typer(help="Our country's root CA and signing keys.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _corridor_file(settings: Settings, given: Path | None) -> Path:
    path = given or settings.corridor_file
    if path is None:
        raise ConfigurationError(
            "no corridor file: pass --config or set GREENLANE_CORRIDOR_FILE",
            code="config.corridor-missing",
        )
    return path


@participants_app.command("load")
def load(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(help="The corridor file.")] = None,
) -> None:
    """Load the corridor file into the registry (adds and updates, never deletes)."""
    from greenlane.corridor.agreement import load_corridor
    from greenlane.trust.registry import sync_corridor

    settings: Settings = ctx.obj
    corridor = load_corridor(_corridor_file(settings, config))
    with transaction(settings) as session:
        report = sync_corridor(session, corridor)
    out.print(
        f"corridor {corridor.id}: {report.countries} countries, "
        f"{report.agencies} agencies, {report.nodes} nodes"
    )


@participants_app.command("list")
def list_participants(
    ctx: typer.Context,
    country: Annotated[str | None, typer.Option(help="Only this country.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every agency and node in the registry."""
    from greenlane.trust.registry import participants

    with transaction(ctx.obj) as session:
        found = participants(session, country)
    if as_json:
        print_json([_participant_json(p) for p in found])
        return
    table = Table("country", "kind", "id", "name", "roles", "endpoint")
    for p in found:
        table.add_row(
            p.country,
            p.kind.value,
            p.id,
            p.name,
            ", ".join(sorted(r.value for r in p.roles)),
            p.endpoint or "",
        )
    out.print(table)


@participants_app.command("show")
def show_participant(ctx: typer.Context, id: str, as_json: JsonOption = False) -> None:
    """One participant with its keys."""
    from greenlane.trust.registry import keys, participant

    with transaction(ctx.obj) as session:
        found = participant(session, id)
        if found is None:
            raise ConfigurationError(f"no participant {id!r}", code="trust.unknown-participant")
        owned = [_key_json(k) for k in keys(session, owner=id)]
    data = _participant_json(found) | {"keys": owned}
    if as_json:
        print_json(data)
        return
    for name, value in data.items():
        if name != "keys":
            out.print(f"{name:>13}: {value if value is not None else ''}")
    _print_keys(owned)


@participants_app.command("add")
def add(
    ctx: typer.Context,
    id: str,
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2 code of its country.")],
    name: Annotated[str | None, typer.Option(help="An agency's name.")] = None,
    role: Annotated[
        list[str] | None, typer.Option(help="An agency's role: nppo, veterinary, customs.")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="A node's URL.")] = None,
    tls_identity: Annotated[str | None, typer.Option(help="A node's TLS identity.")] = None,
) -> None:
    """Add an agency (--name and --role) or a node (--endpoint)."""
    from greenlane.corridor.agreement import AgencyEntry, NodeEntry
    from greenlane.trust import registry

    try:
        if endpoint is not None:
            node = NodeEntry(id=id, endpoint=endpoint, tls_identity=tls_identity)
        else:
            agency = AgencyEntry.model_validate({"id": id, "name": name or "", "roles": role or []})
    except ValueError as exc:
        raise ConfigurationError(
            f"participant {id!r}: {exc}", code="trust.participant-invalid"
        ) from exc
    with transaction(ctx.obj) as session:
        if endpoint is not None:
            registry.add_node(
                session,
                id=node.id,
                country=country,
                endpoint=node.endpoint,
                tls_identity=node.tls_identity,
            )
        else:
            registry.add_agency(
                session, id=agency.id, country=country, name=agency.name, roles=list(agency.roles)
            )
    out.print(f"added {id} ({country})")


def _participant_json(p: object) -> dict[str, object]:
    from greenlane.trust.registry import Participant

    assert isinstance(p, Participant)
    return {
        "id": p.id,
        "kind": p.kind.value,
        "country": p.country,
        "name": p.name,
        "roles": sorted(r.value for r in p.roles),
        "endpoint": p.endpoint,
        "tls_identity": p.tls_identity,
    }


def _key_json(row: object) -> dict[str, object]:
    from greenlane.store.models import StoredKey

    assert isinstance(row, StoredKey)

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "key_id": row.key_id,
        "country": row.country,
        "owner": row.owner_id,
        "owner_kind": row.owner_kind,
        "algorithm": row.algorithm,
        "state": row.state,
        "published_at": when(row.published_at),
        "activated_at": when(row.activated_at),
        "retired_at": when(row.retired_at),
        "revoked_at": when(row.revoked_at),
        "held_here": row.provider is not None,
    }


def _print_keys(keys: list[dict[str, object]]) -> None:
    table = Table("key id", "country", "owner", "alg", "state", "since", "held here")
    for k in keys:
        since = k["revoked_at"] or k["retired_at"] or k["activated_at"] or k["published_at"]
        table.add_row(
            str(k["key_id"])[:16],
            str(k["country"]),
            str(k["owner"]),
            str(k["algorithm"]),
            str(k["state"]),
            str(since),
            "yes" if k["held_here"] else "",
        )
    out.print(table)


# --- keys ------------------------------------------------------------------------------------

RootKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--root-key",
        help="The root CA key file, brought from offline storage (default: the development "
        "file under GREENLANE_KEY_DIR).",
    ),
]


def _provider(settings: Settings) -> KeyProvider:
    from greenlane.trust.lifecycle import provider_from_settings

    return provider_from_settings(settings)


def _root(settings: Settings, country: str, root_key: Path | None) -> RootCA:
    from greenlane.trust.lifecycle import load_root_ca, root_paths

    passphrase = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
    key_file, cert_file = root_paths(settings.key_dir, country)
    if root_key is None:
        _warn_root_file(key_file)
    return load_root_ca(root_key or key_file, cert_file, passphrase)


def _warn_root_file(key_file: Path) -> None:
    err.print(
        Text(
            f"WARNING: the root CA key is a file on this node ({key_file}). Development only: "
            "in production keep it offline and bring it with --root-key.",
            style="bold yellow",
        )
    )


def _now() -> datetime:
    return datetime.now(UTC)


@keys_app.command("init")
def init(
    ctx: typer.Context,
    country: Annotated[str, typer.Option(help="Our country (ISO 3166 alpha-2).")],
    config: Annotated[Path | None, typer.Option(help="The corridor file.")] = None,
    root_key: RootKeyOption = None,
) -> None:
    """Create the root CA (development) if there is none, then a key for each agency and node."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from greenlane.corridor.agreement import load_corridor
    from greenlane.trust.lifecycle import create_root_ca, init_country, root_paths
    from greenlane.trust.registry import sync_corridor

    settings: Settings = ctx.obj
    warn_loudly(settings)
    corridor = load_corridor(_corridor_file(settings, config))
    if country not in corridor.countries:
        raise ConfigurationError(
            f"{country} is not a country of corridor {corridor.id}", code="trust.unknown-country"
        )
    passphrase = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
    key_file, _ = root_paths(settings.key_dir, country)
    if root_key is None and not key_file.exists():
        if settings.profile == "production":
            raise ConfigurationError(
                "the production profile does not create a root CA on a node: bring it "
                "with --root-key",
                code="config.unsafe-in-production",
            )
        root = create_root_ca(
            settings.key_dir, country, corridor.countries[country].name, passphrase, _now()
        )
        out.print(f"created the {country} corridor root CA in {key_file.parent}")
        _warn_root_file(key_file)
        target = corridor.root_certificate_path(country)
        if target is not None and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(root.certificate.public_bytes(Encoding.PEM))
            out.print(f"wrote the root certificate to {target} (give it to the partner)")
    else:
        root = _root(settings, country, root_key)
    with transaction(settings) as session:
        sync_corridor(session, corridor)
        made = init_country(session, country, root, _provider(settings), _now())
        rows = [_key_json(k) for k in made]
    out.print(f"{len(rows)} new key(s) for {country}")
    if rows:
        _print_keys(rows)


@keys_app.command("rotate")
def rotate_key(
    ctx: typer.Context,
    owner: Annotated[str, typer.Argument(help="The agency or node whose key rotates.")],
    activate: Annotated[
        bool,
        typer.Option(
            "--activate", help="Stage two: the pending key signs from now; the old one retires."
        ),
    ] = False,
    root_key: RootKeyOption = None,
) -> None:
    """Stage one publishes a new pending key; stage two (--activate) switches to it."""
    from greenlane.trust import lifecycle, registry

    settings: Settings = ctx.obj
    with transaction(settings) as session:
        found = registry.participant(session, owner)
        if found is None:
            raise ConfigurationError(f"no participant {owner!r}", code="trust.unknown-participant")
        root = _root(settings, found.country, root_key)
        if activate:
            row = lifecycle.activate(session, owner, root, _now())
            message = f"{owner} now signs with {row.key_id[:16]}; the previous key is retired"
        else:
            row = lifecycle.rotate(session, owner, root, _provider(settings), _now())
            message = (
                f"published pending key {row.key_id[:16]} for {owner}; once the partner has it, "
                f"run `greenlane keys rotate {owner} --activate`"
            )
    out.print(message)


@keys_app.command("revoke")
def revoke_key(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The key id (or a unique prefix of it).")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "unspecified",
    root_key: RootKeyOption = None,
) -> None:
    """Revoke a key at once: nothing recorded from now on verifies under it."""
    from greenlane.trust import lifecycle, registry

    settings: Settings = ctx.obj
    with transaction(settings) as session:
        matches = [k for k in registry.keys(session) if k.key_id.startswith(key)]
        country = matches[0].country if len(matches) == 1 else ""
        root = _root(settings, country, root_key) if country else None
        if root is None:
            raise ConfigurationError(f"no single key starts with {key!r}", code="trust.unknown-key")
        row = lifecycle.revoke(session, key, reason, root, _now())
    out.print(f"revoked {row.key_id[:16]} of {row.owner_id}")


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    country: Annotated[str | None, typer.Option(help="Only this country.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every registered key with its state and times."""
    from greenlane.trust.registry import keys

    with transaction(ctx.obj) as session:
        rows = [_key_json(k) for k in keys(session, country=country)]
    if as_json:
        print_json(rows)
    else:
        _print_keys(rows)
