"""Settings from the environment, and back into it for the processes the hub starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import ConfigError, settings_from_env


def test_process_env_rebuilds_the_same_settings(tmp_path: Path) -> None:
    settings = settings_from_env(
        {
            "HUB_SECRET_KEY": "s3cret",
            "HUB_INSTANCE_PATH": str(tmp_path),
            "HUB_MQTT_URL": "mqtt://127.0.0.1:1884",
            "HUB_MQTT_USERNAME": "hub",
            "HUB_MQTT_PASSWORD": "pw",
            "HUB_MQTT_INGEST_WORKERS": "3",
            "HUB_ID": "east",
        }
    )
    again = settings_from_env(settings.process_env())
    assert again == settings.with_overrides(database_url=settings.sqlalchemy_url)
    assert again.mqtt_ingest_workers == 3


@pytest.mark.parametrize("value", ["-1", "17", "two", "1.5"])
def test_a_bad_number_of_ingest_workers_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="HUB_MQTT_INGEST_WORKERS"):
        settings_from_env(
            {"HUB_SECRET_KEY": "x", "HUB_INSTANCE_PATH": str(tmp_path), "HUB_MQTT_INGEST_WORKERS": value}
        )
