"""The operator status page and API, readiness, and the banner when the broker link is down."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from connectors.mqtt_link import MqttLink, MqttLinkConfig
from hub.runtime import free_port


def test_status_page_and_api_show_the_parts_of_this_process(
    app: Flask, client: FlaskClient, auth, make_user
) -> None:
    make_user("xz", "xuzhou")
    auth.login("xz")
    page = client.get("/status")
    assert page.status_code == 200
    assert 'data-component="database"' in page.get_data(as_text=True)
    body = client.get("/api/v1/status").get_json()
    assert body["ok"] is True
    assert [c["name"] for c in body["components"]] == ["database", "disk"]
    assert body["components"][0]["last_seen"]


def test_readiness_needs_no_log_in_and_fails_when_the_broker_link_is_down(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/api/v1/ready").status_code == 200
    app.extensions["status_board"] = _board_with_link(up=False)
    response = client.get("/api/v1/ready")
    assert response.status_code == 503
    assert response.get_json()["ok"] is False


def test_every_page_says_when_the_broker_link_is_down(
    app: Flask, client: FlaskClient, auth, make_user
) -> None:
    make_user("xz", "xuzhou")
    auth.login("xz")
    assert "连接已断开" not in client.get("/").get_data(as_text=True)
    # A real link that is not connected (never started here), as after a broker crash.
    link = MqttLink(
        MqttLinkConfig(url=f"mqtt://127.0.0.1:{free_port()}", client_id="hub-test-down", state_topic=None)
    )
    app.extensions["mqtt_link"] = link
    try:
        for path in ("/", "/incidents/", "/vehicles"):
            assert "与消息代理（MQTT）的连接已断开" in client.get(path).get_data(as_text=True), path
    finally:
        app.extensions.pop("mqtt_link")


def _board_with_link(*, up: bool):
    from hub.runtime.status import StatusBoard

    board = StatusBoard()
    board.register("database", "database", lambda: (True, "sqlite"))
    board.register("mqtt-link", "link", lambda: (up, "mqtt://127.0.0.1:1"))
    board.refresh()
    return board


def test_status_page_and_api_list_the_hub_processes_alive_stopped_and_silent(
    app: Flask, client: FlaskClient, auth, make_user
) -> None:
    from datetime import timedelta

    from hub.extensions import db
    from hub.kernel import nodes
    from hub.kernel.types import utcnow

    nodes.register(db.session, "web-a", ["web", "dispatcher"])
    nodes.register(db.session, "web-b", ["web"])
    nodes.stop(db.session, "web-b")
    silent = nodes.register(db.session, "worker-c", ["ingest"])
    silent.host, silent.last_seen_at = "another-host", utcnow() - timedelta(minutes=5)
    db.session.commit()
    make_user("xz", "xuzhou")
    auth.login("xz")
    page = client.get("/status").get_data(as_text=True)
    assert 'data-node="web-a"' in page and "运行中" in page and "已停止" in page and "失联" in page
    assert "网页服务、流程派发" in page and "遥测接收" in page  # roles by their labels, not codes
    listed = {n["name"]: n for n in client.get("/api/v1/status").get_json()["nodes"]}
    assert {name: n["alive"] for name, n in listed.items()} == {
        "web-a": True,
        "web-b": False,
        "worker-c": False,
    }
    assert listed["web-a"]["roles"] == ["web", "dispatcher"] and listed["web-b"]["stopped_at"]


def test_status_page_and_api_list_the_city_bridges_up_and_down_with_since_when(
    app: Flask, client: FlaskClient, auth, make_user, city
) -> None:
    from datetime import UTC, datetime

    from hub.extensions import db
    from hub.kernel import bridges

    city("xuzhou"), city("linyi")
    went_up = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    went_down = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert bridges.record(db.session, "xuzhou", True, went_up) == "bridge_up"
    # The retained "1" again (the hub reconnected): heard later, but up since the first time.
    bridges.record(db.session, "xuzhou", True, went_down)
    bridges.record(db.session, "linyi", True, went_up)
    assert bridges.record(db.session, "linyi", False, went_down) == "bridge_down"
    assert bridges.record(db.session, "nowhere", True, went_up).startswith("dead:")
    db.session.commit()
    make_user("xz", "xuzhou")
    auth.login("xz")
    page = client.get("/status").get_data(as_text=True)
    assert 'data-bridge="xuzhou"' in page and 'data-bridge="linyi"' in page
    assert "已连接" in page and "已断开" in page
    with client.session_transaction() as browser:
        browser["locale"] = "en"
    english = client.get("/status").get_data(as_text=True)
    assert "City broker bridges" in english and "Connected" in english and "Disconnected" in english
    listed = client.get("/api/v1/status").get_json()["bridges"]
    # The ones down first.
    assert [(b["city"], b["connected"]) for b in listed] == [("linyi", False), ("xuzhou", True)]
    xuzhou = listed[1]
    assert xuzhou["changed_at"].startswith("2026-11-30T01:00") and xuzhou["seen_at"].startswith(
        "2026-11-30T02:00"
    )
