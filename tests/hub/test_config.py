"""Settings from the environment, and back into it for the processes the hub starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hub.config import ConfigError, settings_from_env

KEY = Fernet.generate_key().decode()
OLD_KEY = Fernet.generate_key().decode()


def test_process_env_rebuilds_the_same_settings(tmp_path: Path) -> None:
    settings = settings_from_env(
        {
            "HUB_SECRET_KEY": "s3cret",
            "HUB_ENCRYPTION_KEY": f"{KEY},{OLD_KEY}",
            "HUB_INSTANCE_PATH": str(tmp_path),
            "HUB_MQTT_URL": "mqtt://127.0.0.1:1884",
            "HUB_MQTT_USERNAME": "hub",
            "HUB_MQTT_PASSWORD": "pw",
            "HUB_MQTT_INGEST_WORKERS": "3",
            "HUB_MQTT_INGEST_ELSEWHERE": "1",
            "HUB_ID": "east",
        }
    )
    assert settings.mqtt_ingest_elsewhere
    again = settings_from_env(settings.process_env())
    assert again == settings.with_overrides(database_url=settings.sqlalchemy_url)
    assert again.mqtt_ingest_workers == 3
    assert again.encryption_key == f"{KEY},{OLD_KEY}"


@pytest.mark.parametrize("value", ["-1", "17", "two", "1.5"])
def test_a_bad_number_of_ingest_workers_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="HUB_MQTT_INGEST_WORKERS"):
        settings_from_env(
            {
                "HUB_SECRET_KEY": "x",
                "HUB_ENCRYPTION_KEY": KEY,
                "HUB_INSTANCE_PATH": str(tmp_path),
                "HUB_MQTT_INGEST_WORKERS": value,
            }
        )


def test_retention_days_come_from_the_environment_and_go_back_into_it(tmp_path: Path) -> None:
    settings = settings_from_env(
        {
            "HUB_SECRET_KEY": "x",
            "HUB_ENCRYPTION_KEY": KEY,
            "HUB_INSTANCE_PATH": str(tmp_path),
            "HUB_RETENTION_FLOW_REQUESTS_DAYS": "3",
            "HUB_RETENTION_MQTT_OUTBOX_DAYS": "4",
            "HUB_RETENTION_REMINDERS_DAYS": "120",
            "HUB_RETENTION_DEAD_LETTERS_DAYS": "14",
        }
    )
    days = (
        settings.retention_flow_requests_days,
        settings.retention_mqtt_outbox_days,
        settings.retention_reminders_days,
        settings.retention_dead_letters_days,
    )
    assert days == (3, 4, 120, 14)
    assert settings_from_env(settings.process_env()).retention_reminders_days == 120


@pytest.mark.parametrize("value", ["0", "-3", "week"])
def test_a_bad_retention_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="HUB_RETENTION_DEAD_LETTERS_DAYS"):
        settings_from_env(
            {
                "HUB_SECRET_KEY": "x",
                "HUB_ENCRYPTION_KEY": KEY,
                "HUB_INSTANCE_PATH": str(tmp_path),
                "HUB_RETENTION_DEAD_LETTERS_DAYS": value,
            }
        )


def test_the_encryption_key_is_required_outside_the_demo(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="HUB_ENCRYPTION_KEY is not set"):
        settings_from_env({"HUB_SECRET_KEY": "x", "HUB_INSTANCE_PATH": str(tmp_path)})


@pytest.mark.parametrize("value", ["not-a-key", f"{KEY},short", " , "])
def test_an_encryption_key_that_is_not_fernet_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="HUB_ENCRYPTION_KEY"):
        settings_from_env(
            {"HUB_SECRET_KEY": "x", "HUB_ENCRYPTION_KEY": value, "HUB_INSTANCE_PATH": str(tmp_path)}
        )


def test_the_demo_makes_its_own_keys_readable_by_its_owner_only(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    first = settings_from_env({"HUB_INSTANCE_PATH": str(instance)}, demo=True)
    again = settings_from_env({"HUB_INSTANCE_PATH": str(instance)}, demo=True)
    assert first.encryption_key and again.encryption_key == first.encryption_key
    Fernet(first.encryption_key)
    assert again.secret_key == first.secret_key
    for name in ("demo-encryption-key", "demo-secret-key"):
        assert (instance / name).stat().st_mode & 0o777 == 0o600
    assert instance.stat().st_mode & 0o777 == 0o700
