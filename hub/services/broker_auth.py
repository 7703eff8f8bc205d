"""Mosquitto's password and ACL files, written from the hub's registry of MQTT peers.

Each vehicle may publish only its own telemetry, status, connection state and acks, and read
only its own commands; each linkage system publishes only its own events and state and reads
only its own alerts; the hub reads and writes under its roots; anonymous clients are refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import LinkageSystem, Vehicle

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
class TopicRoots:
    """The deployment's live and exercise topic roots."""

    live: str = "hh"
    exercise: str = "hh-exercise"

    def all(self) -> tuple[str, str]:
        return (self.live, self.exercise)


@dataclass(frozen=True)
class HubCredentials:
    """The hub's own MQTT account."""

    username: str
    password_hash: str


def render_password_file(session: Session, hub: HubCredentials) -> str:
    """Return the password file for the hub, every vehicle and every linkage system."""
    lines = [f"{hub.username}:{hub.password_hash}"]
    for username, password_hash in session.execute(
        select(Vehicle.mqtt_username, Vehicle.mqtt_password_hash).order_by(Vehicle.id)
    ):
        lines.append(f"{username}:{password_hash}")
    for username, password_hash in session.execute(
        select(LinkageSystem.mqtt_username, LinkageSystem.mqtt_password_hash).order_by(LinkageSystem.id)
    ):
        lines.append(f"{username}:{password_hash}")
    return "\n".join(lines) + "\n"


def render_acl_file(session: Session, hub_username: str, roots: TopicRoots = TopicRoots()) -> str:
    """Return the ACL file: explicit topics per account, nothing by pattern or wildcard for peers."""
    blocks = [f"user {hub_username}\n" + "".join(f"topic readwrite {root}/#\n" for root in roots.all())]
    for vehicle in session.scalars(select(Vehicle).order_by(Vehicle.id)):
        lines = [f"user {vehicle.mqtt_username}"]
        for root in roots.all():
            base = f"{root}/v1/{vehicle.city.slug}/vehicles/{vehicle.code}"
            lines += [f"topic write {base}/{leaf}" for leaf in ("telemetry", "status", "state", "ack")]
            lines.append(f"topic read {base}/cmd")
        blocks.append("\n".join(lines) + "\n")
    for system in session.scalars(select(LinkageSystem).order_by(LinkageSystem.id)):
        lines = [f"user {system.mqtt_username}"]
        for root in roots.all():
            base = f"{root}/v1/{system.city.slug}/linkage/{system.code}"
            lines += [f"topic write {base}/events", f"topic write {base}/state", f"topic read {base}/alerts"]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def write_broker_files(
    session: Session, directory: Path, hub: HubCredentials, roots: TopicRoots = TopicRoots()
) -> tuple[Path, Path]:
    """Write both files atomically (a broker reloading mid-write must never see half a file)."""
    paths, _ = _write(session, directory, hub, roots, only_changes=False)
    return paths


def sync_broker_files(
    session: Session, directory: Path, hub: HubCredentials, roots: TopicRoots = TopicRoots()
) -> bool:
    """Rewrite the files only where the registry changed them; return whether anything changed."""
    _, changed = _write(session, directory, hub, roots, only_changes=True)
    return changed


def _write(
    session: Session, directory: Path, hub: HubCredentials, roots: TopicRoots, *, only_changes: bool
) -> tuple[tuple[Path, Path], bool]:
    directory.mkdir(parents=True, exist_ok=True)
    written, changed = [], False
    for name, text in (
        ("passwords", render_password_file(session, hub)),
        ("acl", render_acl_file(session, hub.username, roots)),
    ):
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
