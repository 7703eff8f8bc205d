"""Tests for hub.runtime.edge_broker: the bridge section and the bridge's regional account."""

from __future__ import annotations

import pytest

from contracts.errors import ContractError
from contracts.mqtt import city_subtrees
from hub.runtime.edge_broker import (
    EdgeBridge,
    bridge_account,
    bridge_config_lines,
    read_bridge_passwords,
    render_bridge_config,
)


def _bridge(**overrides: object) -> EdgeBridge:
    settings: dict[str, object] = {
        "city": "xuzhou",
        "regional_host": "mqtt.region.example",
        "regional_port": 1883,
        "password": "s3cret",
    }
    return EdgeBridge(**(settings | overrides))  # type: ignore[arg-type]


def test_the_bridge_carries_its_city_subtrees_both_ways_at_qos_1() -> None:
    lines = bridge_config_lines(_bridge())
    assert lines[0] == "connection edge-xuzhou"
    assert [line for line in lines if line.startswith("topic ")] == [
        "topic hh/v1/xuzhou/# both 1",
        "topic hh-exercise/v1/xuzhou/# both 1",
    ]


def test_the_bridge_keeps_one_persistent_session_under_a_fixed_client_id() -> None:
    lines = bridge_config_lines(_bridge())
    for expected in (
        "address mqtt.region.example:1883",
        "remote_clientid bridge-xuzhou",
        "remote_username bridge-xuzhou",
        "remote_password s3cret",
        "cleansession false",
        "local_cleansession false",
        # 3.1.1 with try_private: see the module's docstring for why not MQTT 5.
        "bridge_protocol_version mqttv311",
        "try_private true",
    ):
        assert expected in lines
    assert bridge_config_lines(_bridge()) == lines


def test_the_password_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(_bridge())


def test_the_topic_root_comes_from_the_bridge() -> None:
    text = render_bridge_config(_bridge(root="zz"))
    assert "topic zz/v1/xuzhou/# both 1\ntopic zz-exercise/v1/xuzhou/# both 1\n" in text
    assert "hh" not in text
    assert text.startswith("#")


@pytest.mark.parametrize("city", ["Xuzhou", "hub", "xu/zhou", "#", ""])
def test_a_city_that_cannot_name_a_topic_is_refused(city: str) -> None:
    with pytest.raises(ContractError):
        _bridge(city=city)
    with pytest.raises(ContractError):
        city_subtrees("hh", city)


def test_a_line_break_cannot_smuggle_in_an_option() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        bridge_config_lines(_bridge(password="x\ntopic # both 1"))


def test_the_regional_account_reads_and_writes_only_its_city() -> None:
    account = bridge_account(_bridge(), "$7$hash")
    assert account.username == "bridge-xuzhou"
    assert account.password_hash == "$7$hash"
    assert account.write == account.read == ("hh/v1/xuzhou/#", "hh-exercise/v1/xuzhou/#")


def test_bridge_passwords_are_read_one_city_a_line() -> None:
    text = "# city password\nxuzhou  pw-one\n\nsuqian pw two\n"
    assert read_bridge_passwords(text) == {"xuzhou": "pw-one", "suqian": "pw two"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [("xuzhou\n", "line 1"), ("xuzhou a\nxuzhou b\n", "twice"), ("Xu a\n", "city slug")],
)
def test_malformed_bridge_passwords_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        read_bridge_passwords(text)
