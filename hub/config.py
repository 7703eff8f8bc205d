"""Settings for the hub, read from the environment only at entry points."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

DEFAULT_INSTANCE = Path.cwd() / "instance"
# The hub looks at this many ingest-worker sessions on the broker (flows/ingest_worker.py).
MAX_INGEST_WORKERS = 16


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    """Everything the hub needs to know about where it runs; tests build this directly."""

    secret_key: str
    instance_path: Path = DEFAULT_INSTANCE
    # Fernet keys, comma-separated: the first encrypts, all decrypt (hub/kernel/secrets.py).
    encryption_key: str | None = None
    database_url: str | None = None
    mqtt_url: str | None = None
    mqtt_root: str = "hh"
    hub_id: str = "main"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # Extra processes that store telemetry from a shared subscription (flows/ingest_worker.py);
    # 0 keeps it in the hub's own process.
    mqtt_ingest_workers: int = 0
    # Telemetry is stored by `hub mqtt ingest-worker` processes run apart (their own units or
    # hosts, docs/DEPLOYMENT.md): the hub's link leaves it to them and the hub starts none.
    mqtt_ingest_elsewhere: bool = False
    position_retention_days: int = 30
    # How long the kernel's tables keep what is finished (hub/kernel/retention.py).
    retention_flow_requests_days: int = 7  # done or failed flow requests
    retention_mqtt_outbox_days: int = 7  # published MQTT messages
    retention_reminders_days: int = 90  # reminders sent to cities
    retention_dead_letters_days: int = 30  # inbound messages that broke their contract
    # Position history older than this keeps one point a minute per vehicle (hub/fleet/ingest.py).
    position_thin_after_days: int = 3
    # The managed Prefect server deletes finished flow runs (with their task runs and logs) and
    # events older than this, by its own database vacuum service.
    prefect_retention_days: int = 2
    # Writes are refused with a clear message while the instance folder has less free space.
    min_free_disk_mb: int = 64

    # Vehicle reports dated further than this ahead of the hub's clock are dead letters.
    clock_skew_seconds: int = 300
    daily_report_due: str = "17:00"  # local time (Asia/Shanghai) by which each city files its report
    partner_sync_seconds: int = 60
    # A mutual-aid registry entry not verified for this long shows as unverified, and its city
    # is reminded (once a week) to verify it again.
    aid_verify_days: int = 30
    chase_seconds: int = 60  # how often late receipts and answers are looked for
    redeliver_seconds: int = 30  # how often undelivered bulletins are tried again
    prefect_api_url: str | None = None
    # For the managed Prefect server: PostgreSQL (postgresql+asyncpg://…) avoids SQLite's stalls.
    prefect_database_url: str | None = None
    flow_mode: str = "local"  # "local" runs flows in the hub; "deployment" hands them to Prefect
    demo: bool = False
    secure_cookies: bool = True
    max_body_bytes: int = 1_000_000
    # The largest photo or document that may be attached to an incident.
    attachment_max_bytes: int = 10 * 1024 * 1024
    login_max_failures: int = 5
    login_lockout_seconds: int = 900
    default_locale: str = "zh_CN"
    timezone: str = "Asia/Shanghai"
    # A tile server of the site's own ({z}/{x}/{y} URL template); without one the map draws
    # only the boundaries the hub ships.
    map_tile_url: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def daily_report_due_time(self) -> time:
        """Return the daily-report deadline as a time of day."""
        return time.fromisoformat(self.daily_report_due)

    @property
    def sqlalchemy_url(self) -> str:
        """Return the configured database URL, or SQLite under the instance folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.instance_path / 'hub.sqlite3'}"

    def process_env(self) -> dict[str, str]:
        """Return the `HUB_…` variables that rebuild these settings in a process the hub starts."""
        values = {
            "HUB_SECRET_KEY": self.secret_key,
            "HUB_ENCRYPTION_KEY": self.encryption_key,
            "HUB_INSTANCE_PATH": str(self.instance_path),
            "HUB_DATABASE_URL": self.sqlalchemy_url,
            "HUB_MQTT_URL": self.mqtt_url,
            "HUB_MQTT_ROOT": self.mqtt_root,
            "HUB_ID": self.hub_id,
            "HUB_MQTT_USERNAME": self.mqtt_username,
            "HUB_MQTT_PASSWORD": self.mqtt_password,
            "HUB_MQTT_INGEST_WORKERS": str(self.mqtt_ingest_workers),
            "HUB_MQTT_INGEST_ELSEWHERE": "1" if self.mqtt_ingest_elsewhere else "",
            "HUB_POSITION_RETENTION_DAYS": str(self.position_retention_days),
            "HUB_RETENTION_FLOW_REQUESTS_DAYS": str(self.retention_flow_requests_days),
            "HUB_RETENTION_MQTT_OUTBOX_DAYS": str(self.retention_mqtt_outbox_days),
            "HUB_RETENTION_REMINDERS_DAYS": str(self.retention_reminders_days),
            "HUB_RETENTION_DEAD_LETTERS_DAYS": str(self.retention_dead_letters_days),
            "HUB_POSITION_THIN_AFTER_DAYS": str(self.position_thin_after_days),
            "HUB_PREFECT_RETENTION_DAYS": str(self.prefect_retention_days),
            "HUB_MIN_FREE_DISK_MB": str(self.min_free_disk_mb),
            "HUB_CLOCK_SKEW_SECONDS": str(self.clock_skew_seconds),
            "HUB_AID_VERIFY_DAYS": str(self.aid_verify_days),
            "HUB_DEMO": "1" if self.demo else "",
            "HUB_MAP_TILE_URL": self.map_tile_url or "",
        }
        return {name: value for name, value in values.items() if value}

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed."""
        return replace(self, **changes)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _days(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{name} must be a whole number of days, at least 1, not {value!r}")
    return int(value)


def _whole(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit():
        raise ConfigError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def settings_from_env(env: dict[str, str] | None = None, *, demo: bool | None = None) -> Settings:
    """Build settings from `HUB_…` variables (and `PREFECT_API_URL`); fail fast on gaps."""
    env = dict(os.environ if env is None else env)
    instance = Path(env.get("HUB_INSTANCE_PATH") or DEFAULT_INSTANCE).resolve()
    is_demo = _flag(env.get("HUB_DEMO")) if demo is None else demo
    secret = env.get("HUB_SECRET_KEY", "")
    if not secret:
        if not is_demo:
            raise ConfigError(
                "HUB_SECRET_KEY is not set. Set it to a long random string "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
                "or run the demo with `make demo`."
            )
        secret = _demo_secret(instance)
    encryption_key = env.get("HUB_ENCRYPTION_KEY", "").strip()
    if not encryption_key:
        if not is_demo:
            raise ConfigError(
                "HUB_ENCRYPTION_KEY is not set. It encrypts the tokens the hub presents to the cities' "
                "platforms. Set it to a Fernet key (python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'), or run the demo with `make demo`."
            )
        encryption_key = _demo_encryption_key(instance)
    check_encryption_key(encryption_key)
    workers = env.get("HUB_MQTT_INGEST_WORKERS") or "0"
    if not workers.isdigit() or int(workers) > MAX_INGEST_WORKERS:
        raise ConfigError(
            f"HUB_MQTT_INGEST_WORKERS must be a number from 0 to {MAX_INGEST_WORKERS}, not {workers!r}"
        )
    mode = env.get("HUB_FLOW_MODE", "local")
    if mode not in {"local", "deployment"}:
        raise ConfigError(f"HUB_FLOW_MODE must be 'local' or 'deployment', not {mode!r}")
    return Settings(
        secret_key=secret,
        instance_path=instance,
        encryption_key=encryption_key,
        database_url=env.get("HUB_DATABASE_URL") or None,
        mqtt_url=env.get("HUB_MQTT_URL") or None,
        mqtt_root=env.get("HUB_MQTT_ROOT", "hh"),
        hub_id=env.get("HUB_ID", "main"),
        mqtt_username=env.get("HUB_MQTT_USERNAME") or None,
        mqtt_password=env.get("HUB_MQTT_PASSWORD") or None,
        mqtt_ingest_workers=int(workers),
        mqtt_ingest_elsewhere=_flag(env.get("HUB_MQTT_INGEST_ELSEWHERE")),
        position_retention_days=int(env.get("HUB_POSITION_RETENTION_DAYS", "30")),
        retention_flow_requests_days=_days(env, "HUB_RETENTION_FLOW_REQUESTS_DAYS", 7),
        retention_mqtt_outbox_days=_days(env, "HUB_RETENTION_MQTT_OUTBOX_DAYS", 7),
        retention_reminders_days=_days(env, "HUB_RETENTION_REMINDERS_DAYS", 90),
        retention_dead_letters_days=_days(env, "HUB_RETENTION_DEAD_LETTERS_DAYS", 30),
        position_thin_after_days=_days(env, "HUB_POSITION_THIN_AFTER_DAYS", 3),
        prefect_retention_days=_days(env, "HUB_PREFECT_RETENTION_DAYS", 2),
        min_free_disk_mb=_whole(env, "HUB_MIN_FREE_DISK_MB", 64),
        clock_skew_seconds=int(env.get("HUB_CLOCK_SKEW_SECONDS", "300")),
        daily_report_due=env.get("HUB_DAILY_REPORT_DUE", "17:00"),
        partner_sync_seconds=int(env.get("HUB_PARTNER_SYNC_SECONDS", "60")),
        aid_verify_days=_days(env, "HUB_AID_VERIFY_DAYS", 30),
        prefect_api_url=env.get("PREFECT_API_URL") or None,
        prefect_database_url=env.get("HUB_PREFECT_DATABASE_URL") or None,
        flow_mode=mode,
        demo=is_demo,
        secure_cookies=not _flag(env.get("HUB_INSECURE_COOKIES")) and not is_demo,
        map_tile_url=env.get("HUB_MAP_TILE_URL") or None,
        attachment_max_bytes=_whole(env, "HUB_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024),
    )


def encryption_keys(value: str | None) -> list[str]:
    """Split `HUB_ENCRYPTION_KEY` into its keys, newest (the one that encrypts) first."""
    return [key.strip() for key in (value or "").split(",") if key.strip()]


def check_encryption_key(value: str) -> None:
    """Fail with a clear message unless every comma-separated part is a Fernet key."""
    keys = encryption_keys(value)
    if not keys:
        raise ConfigError("HUB_ENCRYPTION_KEY holds no key")
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(
                f"HUB_ENCRYPTION_KEY: key {number} is not a Fernet key (44 characters of url-safe "
                "base64 for 32 bytes); make one with python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None


def _demo_secret(instance: Path) -> str:
    """Return the demo's own random secret, kept in the instance folder across restarts."""
    return _demo_file(instance, "demo-secret-key", lambda: secrets.token_urlsafe(48))


def _demo_encryption_key(instance: Path) -> str:
    """Return the demo's own Fernet key, kept in the instance folder across restarts."""
    return _demo_file(instance, "demo-encryption-key", lambda: Fernet.generate_key().decode())


def _demo_file(instance: Path, name: str, make: Callable[[], str]) -> str:
    """Return the content of a file only the owner can read, writing it first if need be."""
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = instance / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(make())
    return path.read_text(encoding="utf-8").strip()
