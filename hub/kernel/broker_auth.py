"""Mosquitto's password and ACL files, written from the accounts the capabilities declare.

Each account may use only the topics its capability lists for it (a vehicle its own telemetry,
status, state, acks and commands, say); the hub reads and writes under its live and exercise
roots, taken from settings; anonymous clients are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from contracts.errors import ContractError
from contracts.mqtt import DEFAULT_ROOT, exercise_root, parse_topic
from hub.capabilities import BrokerAccount, all_capabilities
from hub.kernel import cities
from hub.kernel.types import DbSession

# Mosquitto 2's password file format: $7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>.
_HASH_ID = 7
_ITERATIONS = 101
_SALT_BYTES = 12


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = _ITERATIONS) -> str:
    """Return the password in the form `mosquitto_passwd` writes."""
    salt = salt if salt is not None else os.urandom(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"${_HASH_ID}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_mosquitto_hash(password: str, stored: str) -> bool:
    """Return whether the password matches a hash in Mosquitto's form."""
    try:
        _, hash_id, iterations, salt, _digest = stored.split("$")
    except ValueError:
        return False
    if hash_id != str(_HASH_ID):
        return False
    expected = mosquitto_hash(password, salt=base64.b64decode(salt), iterations=int(iterations))
    return hmac.compare_digest(expected, stored)


def new_secret() -> str:
    """Return a fresh random MQTT password."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class HubCredentials:
    """The hub's own MQTT account."""

    username: str
    password_hash: str


def _accounts(session: DbSession, root: str) -> list[BrokerAccount]:
    accounts: list[BrokerAccount] = []
    for capability in all_capabilities():
        if capability.broker_accounts is not None:
            accounts += capability.broker_accounts(session, root)
    return accounts


def render_password_file(session: DbSession, hub: HubCredentials, root: str = DEFAULT_ROOT) -> str:
    """Return the password file for the hub and every account the capabilities declare."""
    return _password_text(hub, _accounts(session, root))


def render_acl_file(session: DbSession, hub_username: str, root: str = DEFAULT_ROOT) -> str:
    """Return the ACL file: explicit topics per account, nothing by pattern or wildcard for peers."""
    return _acl_text(hub_username, root, _accounts(session, root))


def _password_text(hub: HubCredentials | None, accounts: list[BrokerAccount]) -> str:
    lines = [f"{hub.username}:{hub.password_hash}"] if hub is not None else []
    lines += [f"{a.username}:{a.password_hash}" for a in accounts]
    return "\n".join(lines) + "\n"


def _acl_text(hub_username: str | None, root: str, accounts: list[BrokerAccount]) -> str:
    blocks = []
    if hub_username is not None:
        hub_topics = "".join(f"topic readwrite {r}/#\n" for r in (root, exercise_root(root)))
        blocks.append(f"user {hub_username}\n{hub_topics}")
    for account in accounts:
        lines = [f"user {account.username}"]
        lines += [f"topic write {topic}" for topic in account.write]
        lines += [f"topic read {topic}" for topic in account.read]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def write_broker_files(
    session: DbSession,
    directory: Path,
    hub: HubCredentials,
    root: str = DEFAULT_ROOT,
    *,
    extra_accounts: Sequence[BrokerAccount] = (),
) -> tuple[Path, Path]:
    """Write both files atomically (a broker reloading mid-write must never see half a file).

    `extra_accounts` are accounts the registry does not hold, such as the city-edge brokers'
    bridges on the regional broker (`hub.runtime.edge_broker.bridge_account`).
    """
    paths, _ = _write(session, directory, hub, root, extra_accounts, only_changes=False)
    return paths


def sync_broker_files(
    session: DbSession,
    directory: Path,
    hub: HubCredentials,
    root: str = DEFAULT_ROOT,
    *,
    extra_accounts: Sequence[BrokerAccount] = (),
) -> bool:
    """Rewrite the files only where the registry changed them; return whether anything changed."""
    _, changed = _write(session, directory, hub, root, extra_accounts, only_changes=True)
    return changed


def _write(
    session: DbSession,
    directory: Path,
    hub: HubCredentials,
    root: str,
    extra_accounts: Sequence[BrokerAccount],
    *,
    only_changes: bool,
) -> tuple[tuple[Path, Path], bool]:
    # Both files from one read of the registry: read twice, a registration committed in between
    # would land in one file now and the other at the next look, reloading the broker twice.
    accounts = _accounts(session, root) + list(extra_accounts)
    return _write_pair(
        directory, _password_text(hub, accounts), _acl_text(hub.username, root, accounts), only_changes
    )


def write_edge_broker_files(
    session: DbSession, directory: Path, city: str, root: str = DEFAULT_ROOT
) -> tuple[Path, Path]:
    """Write a city-edge broker's files: the accounts of that city's devices, and no hub account.

    An account belongs to the city when every topic it may use lies in the city's subtree: that
    subtree is all the edge broker carries (`hub.runtime.edge_broker`), and the hub and the
    bridges connect to the regional broker, not to the edge.
    """
    cities.by_slug(session, city)  # a mistyped city must not give an edge broker with no accounts
    mine = [a for a in _accounts(session, root) if _confined_to(a, city, root)]
    paths, _ = _write_pair(directory, _password_text(None, mine), _acl_text(None, root, mine), False)
    return paths


def _confined_to(account: BrokerAccount, city: str, root: str) -> bool:
    topics = account.write + account.read
    try:
        return bool(topics) and all(parse_topic(topic, root=root).city == city for topic in topics)
    except ContractError:  # a filter or a topic outside the scheme: not one city's device
        return False


def _write_pair(
    directory: Path, passwords: str, acl: str, only_changes: bool
) -> tuple[tuple[Path, Path], bool]:
    directory.mkdir(parents=True, exist_ok=True)
    written, changed = [], False
    for name, text in (("passwords", passwords), ("acl", acl)):
        path = directory / name
        written.append(path)
        if only_changes and path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)
        changed = True
    return (written[0], written[1]), changed
