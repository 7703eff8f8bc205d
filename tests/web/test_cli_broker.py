"""`hub broker edge-config` and `hub broker write-files --bridge-passwords`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.config import Settings
from hub.kernel.broker_auth import check_mosquitto_hash
from web.cli import main


def test_edge_config_prints_the_bridge_section() -> None:
    result = CliRunner().invoke(
        main,
        ["broker", "edge-config", "--city", "suqian", "--regional", "10.0.0.5:1883", "--root", "zz"],
        env={"HUB_MQTT_BRIDGE_PASSWORD": "s3cret"},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "connection edge-suqian" in lines
    assert "address 10.0.0.5:1883" in lines
    assert "remote_password s3cret" in lines
    assert [line for line in lines if line.startswith("topic ")] == [
        "topic zz/v1/suqian/# both 1",
        "topic zz-exercise/v1/suqian/# both 1",
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--city", "Su", "--regional", "h:1883"], "invalid city slug"),
        (["--city", "suqian", "--regional", "1883"], "expected HOST:PORT"),
        (["--city", "suqian", "--regional", "h:99999"], "expected HOST:PORT"),
    ],
)
def test_edge_config_refuses_what_it_cannot_write(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(
        main, ["broker", "edge-config", *arguments], env={"HUB_MQTT_BRIDGE_PASSWORD": "s3cret"}
    )
    assert result.exit_code != 0
    assert message in result.output


def test_write_files_adds_the_bridges_accounts(settings: Settings, tmp_path: Path) -> None:
    passwords = tmp_path / "bridges"
    passwords.write_text("xuzhou pw-xz\nsuqian pw-sq\n")
    out = tmp_path / "auth"
    result = CliRunner().invoke(
        main,
        ["broker", "write-files", "--dir", str(out), "--bridge-passwords", str(passwords)],
        env={**settings.process_env(), "HUB_MQTT_PASSWORD": "hub-pw"},
    )
    assert result.exit_code == 0, result.output
    entries = dict(line.split(":", 1) for line in (out / "passwords").read_text().splitlines())
    assert check_mosquitto_hash("pw-xz", entries["bridge-xuzhou"])
    assert check_mosquitto_hash("pw-sq", entries["bridge-suqian"])
    acl = (out / "acl").read_text()
    assert "user bridge-suqian\ntopic write hh/v1/suqian/#\ntopic write hh-exercise/v1/suqian/#\n" in acl


def test_edge_files_hold_the_citys_devices_only(app, city, settings: Settings, tmp_path: Path) -> None:
    from hub.extensions import db
    from hub.fleet import services as fleet
    from hub.kernel.actors import Actor
    from hub.kernel.models import Role

    admin = Actor("system", "tests", None, Role.ADMIN)
    fleet.register_vehicle(db.session, admin, city("suqian"), "v01", "宿迁1号")
    fleet.register_vehicle(db.session, admin, city("heze"), "v01", "菏泽1号")
    db.session.commit()
    out = tmp_path / "edge"
    result = CliRunner().invoke(
        main, ["broker", "edge-files", "--city", "suqian", "--dir", str(out)], env=settings.process_env()
    )
    assert result.exit_code == 0, result.output
    assert [line.split(":", 1)[0] for line in (out / "passwords").read_text().splitlines()] == [
        "veh-suqian-v01"
    ]
    assert "heze" not in (out / "acl").read_text()


def test_edge_files_refuse_an_unknown_city(app, settings: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["broker", "edge-files", "--city", "xuzhuo", "--dir", str(tmp_path / "edge")],
        env=settings.process_env(),
    )
    assert result.exit_code != 0
    assert "unknown city: 'xuzhuo'" in result.output
    assert not (tmp_path / "edge").exists()
