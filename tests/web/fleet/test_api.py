"""The vehicles through /api/v1: list, one, track, commands (send, list, state), dead letters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contracts.mqtt import Ack, AckStage, Telemetry, ack_topic, decode_message, encode, telemetry_topic
from hub.app import settings_of
from hub.extensions import db
from hub.fleet import ingest
from hub.fleet import services as fleet
from hub.fleet.models import CommandState, Vehicle, VehicleCommand
from hub.kernel import dead_letters
from hub.kernel.actors import Actor
from hub.kernel.models import AuditEntry, MqttOutbox, Role

ADMIN = Actor("system", "tests", None, Role.ADMIN)


def _inbound(topic: str, model: object) -> ingest.Inbound:
    raw = encode(model)  # type: ignore[arg-type]
    address, payload = decode_message(topic, raw)
    return ingest.Inbound(address, payload, raw)


@pytest.fixture
def vehicles(app: Flask, city) -> dict[str, Vehicle]:
    """One vehicle in Linyi with a track of 30 reports a minute apart, one in Xuzhou."""
    linyi, _ = fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号指挥车")
    xuzhou, _ = fleet.register_vehicle(db.session, ADMIN, city("xuzhou"), "v01", "徐州1号指挥车")
    db.session.commit()
    root = settings_of(app).mqtt_root
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    topic = telemetry_topic(root, "linyi", "v01")
    batch = [
        _inbound(
            topic,
            Telemetry(
                vehicle="v01", lat=35.0 + n / 1000, lon=118.33, speed_kmh=40.0, heading=90.0,
                at=start + timedelta(minutes=n), seq=n + 1,
            ),
        )
        for n in range(30)
    ]  # fmt: skip
    ingest.apply_batch(db.session, batch, root=root)
    db.session.commit()
    return {"linyi": linyi, "xuzhou": xuzhou, "start": start}  # type: ignore[dict-item]


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_vehicles_are_listed_and_read(client: FlaskClient, make_token, vehicles) -> None:
    headers = _bearer(make_token("xuzhou"))
    listed = client.get("/api/v1/vehicles", headers=headers)
    assert listed.status_code == 200
    assert {(v["city"], v["code"]) for v in listed.json["items"]} == {("linyi", "v01"), ("xuzhou", "v01")}
    only = client.get("/api/v1/vehicles?city=linyi", headers=headers).json["items"]
    assert [v["name"] for v in only] == ["临沂1号指挥车"]
    one = client.get(f"/api/v1/vehicles/{vehicles['linyi'].id}", headers=headers).json
    assert one["latitude"] == pytest.approx(35.029) and one["area_city"] == "linyi"
    assert client.get("/api/v1/vehicles/99999", headers=headers).status_code == 404
    assert client.get("/api/v1/vehicles?city=atlantis", headers=headers).status_code == 404
    assert client.get("/api/v1/vehicles").status_code == 401


def test_track_by_time_range_and_limit(client: FlaskClient, make_token, vehicles) -> None:
    headers = _bearer(make_token("xuzhou"))
    url = f"/api/v1/vehicles/{vehicles['linyi'].id}/positions"
    whole = client.get(url, headers=headers).json["items"]
    assert len(whole) == 30 and [p["seq"] for p in whole] == list(range(1, 31))
    start: datetime = vehicles["start"]  # type: ignore[assignment]
    since = (start + timedelta(minutes=10)).isoformat()
    until = (start + timedelta(minutes=20)).isoformat()
    part = client.get(url, headers=headers, query_string={"since": since, "until": until}).json["items"]
    assert [p["seq"] for p in part] == list(range(11, 21))
    latest = client.get(url, headers=headers, query_string={"limit": 5}).json["items"]
    assert [p["seq"] for p in latest] == [26, 27, 28, 29, 30]
    for bad in (
        {"limit": 0},
        {"limit": "many"},
        {"since": "yesterday"},
        {"since": "2026-11-30T10:00:00"},  # no offset
        {"since": until, "until": since},
    ):
        answer = client.get(url, headers=headers, query_string=bad)
        assert answer.status_code == 422, bad
        assert answer.json["error"]["code"]


def test_send_a_command_follow_its_state_and_list_them(
    app: Flask, client: FlaskClient, make_token, vehicles
) -> None:
    headers = _bearer(make_token("linyi"))
    vehicle = vehicles["linyi"]
    url = f"/api/v1/vehicles/{vehicle.id}/commands"
    body = {"action": {"kind": "goto", "lat": 35.1, "lon": 118.3, "note": "前往沂河大桥"}, "ttl_seconds": 300}
    sent = client.post(url, headers=headers, json=body)
    assert sent.status_code == 201, sent.json
    command = sent.json
    assert command["state"] == CommandState.PENDING and command["kind"] == "goto"
    assert sent.headers["Location"].endswith(f"/commands/{command['command_id']}")
    # The same service as the vehicle page: queued for the broker and audited.
    assert db.session.scalar(select(func.count()).select_from(MqttOutbox)) == 1
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "command.sent")).actor.startswith(
        "token:"
    )
    stored = db.session.scalar(select(VehicleCommand))
    root = settings_of(app).mqtt_root
    ack = Ack(command_id=stored.command_id, stage=AckStage.DONE, at=datetime.now(UTC))
    ingest.apply_batch(db.session, [_inbound(ack_topic(root, "linyi", "v01"), ack)], root=root)
    db.session.commit()
    state = client.get(sent.headers["Location"], headers=headers)
    assert state.status_code == 200 and state.json["state"] == CommandState.DONE
    listed = client.get(url, headers=headers).json["items"]
    assert [c["command_id"] for c in listed] == [command["command_id"]]
    other = f"/api/v1/vehicles/{vehicles['xuzhou'].id}/commands/{command['command_id']}"
    assert client.get(other, headers=headers).status_code == 404


def test_another_citys_vehicle_and_bad_commands_are_refused(
    client: FlaskClient, make_token, vehicles
) -> None:
    headers = _bearer(make_token("linyi"))
    good = {"action": {"kind": "report_position"}}
    refused = client.post(f"/api/v1/vehicles/{vehicles['xuzhou'].id}/commands", headers=headers, json=good)
    assert refused.status_code == 403
    url = f"/api/v1/vehicles/{vehicles['linyi'].id}/commands"
    for bad in (
        {"action": {"kind": "goto", "lat": 95, "lon": 118.3}},
        {"action": {"kind": "set_status", "status": "asleep"}},
        {"action": {"kind": "notice", "title": "预警"}},  # the hub's own, never a caller's
        {"action": {"kind": "report_position"}, "ttl_seconds": 5},
        {"action": {"kind": "report_position"}, "extra": 1},
        {},
    ):
        answer = client.post(url, headers=headers, json=bad)
        assert answer.status_code == 422, bad
    not_json = client.post(url, headers=headers, data="kind=goto")
    assert not_json.status_code == 422
    assert client.post("/api/v1/vehicles/99999/commands", headers=headers, json=good).status_code == 404
    assert db.session.scalar(select(func.count()).select_from(VehicleCommand)) == 0


def test_dead_letters_are_listed(client: FlaskClient, make_token) -> None:
    dead_letters.record(
        db.session, "mqtt", "hh/v1/heze/vehicles/v99/telemetry", "unknown vehicle", b"\xff{bad"
    )
    db.session.commit()
    answer = client.get("/api/v1/dead-letters", headers=_bearer(make_token("heze")))
    assert answer.status_code == 200
    assert answer.json["total"] == 1
    letter = answer.json["items"][0]
    assert letter["reason"] == "unknown vehicle" and letter["size"] == 5
    assert letter["payload_text"] == "\ufffd{bad"
    assert client.get("/api/v1/dead-letters?limit=0", headers=_bearer(make_token("heze"))).status_code == 422
    # Another city reads none of Heze's.
    other = client.get("/api/v1/dead-letters", headers=_bearer(make_token("xuzhou")))
    assert other.status_code == 200 and other.json == {"total": 0, "items": []}
