"""Control characters are refused at every entry point, and the Atom feed stays well-formed."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from defusedxml.ElementTree import fromstring
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connectors.mqtt_link import InboundMessage
from contracts.errors import ContractError
from contracts.mqtt import linkage_events_topic
from contracts.partner import decode_receipt
from flows.context import use_app
from flows.mqtt_bridge import MqttBridge
from hub.bulletins.models import Bulletin
from hub.extensions import db
from hub.fleet import services as fleet
from hub.incidents.models import Incident
from hub.kernel.actors import Actor
from hub.kernel.models import DeadLetter, Role
from tests.web.api.test_bulletin_hardening_api import _cap
from tests.web.api.test_exchange_api import _auth, _bulletin

ATOM = "{http://www.w3.org/2005/Atom}"
BAD = pytest.mark.parametrize(
    "bad", ["\x01", "\x00", "\x1f", "\ufffe"], ids=["U+0001", "NUL", "U+001F", "U+FFFE"]
)


def _count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


@BAD
def test_the_api_refuses_control_characters(client: FlaskClient, make_token, bad: str) -> None:
    linyi = make_token("linyi")
    for field in ("title", "text", "area"):
        response = client.post(
            "/api/v1/bulletins", json=_bulletin(**{field: f"沂河{bad}洪水"}), headers=_auth(linyi)
        )
        assert response.status_code == 422, response.json
        assert "control characters" in json.dumps(response.json, ensure_ascii=False)
    # At the end, where trimming would otherwise take U+001F away unseen.
    assert (
        client.post("/api/v1/bulletins", json=_bulletin(title=f"沂河{bad}"), headers=_auth(linyi)).status_code
        == 422
    )
    assert _count(Bulletin) == 0


@BAD
def test_the_form_refuses_control_characters(client: FlaskClient, auth, make_user, bad: str) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post(
        "/bulletins/new",
        data={
            "csrf_token": auth.csrf("/bulletins/new"),
            "kind": "warning",
            "colour": "orange",
            "category": "natural_disaster",
            "title": f"沂河{bad}洪水",
            "area": "沂河流域",
            "text": "超警戒水位。",
            "addressed_cities": ["xuzhou"],
            "scope": "public",
            "receipt_minutes": "30",
        },
    )
    assert response.status_code == 422
    assert _count(Bulletin) == 0


@pytest.mark.parametrize("bad", [b"&#1;", b"&#0;", b"\x01", b"\x00"])
def test_cap_refuses_control_characters(client: FlaskClient, make_token, bad: bytes) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    cap = _cap(client, linyi, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    count = _count(Bulletin)
    poisoned = re.sub(rb"<headline>", b"<headline>" + bad, cap)
    assert poisoned != cap
    response = client.post(
        "/api/v1/warnings/cap", data=poisoned, content_type="application/cap+xml", headers=_auth(xuzhou)
    )
    assert response.status_code == 422, response.json
    assert _count(Bulletin) == count


@BAD
def test_mqtt_dead_letters_control_characters(app: Flask, city, bad: str) -> None:
    fleet.register_linkage_system(
        db.session, Actor("system", "tests", None, Role.ADMIN), city("linyi"), "fire119", "119", "临沂119"
    )
    db.session.commit()
    event = {
        "schema_version": 1,
        "event_id": "E-1",
        "system": "119",
        "category": "accident_disaster",
        "level": "II",
        "title": f"化工园区{bad}火灾",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "affected_cities": ["linyi"],
    }
    topic = linkage_events_topic("hh", "linyi", "fire119")
    message = InboundMessage(topic, json.dumps(event).encode(), 1, False, 1, False, 0, datetime.now(UTC), 0.0)
    use_app(app)
    try:
        counts = MqttBridge(object(), root="hh").write([message])  # type: ignore[arg-type]
    finally:
        use_app(None)
    assert counts["dead_letter"] == 1
    assert _count(Incident) == 0
    assert "control characters" in db.session.scalars(select(DeadLetter)).one().reason


@BAD
def test_partner_contracts_refuse_control_characters(bad: str) -> None:
    body = {
        "schema_version": 1,
        "received_at": datetime.now(UTC).isoformat(),
        "acknowledged_by": f"值班{bad}员",
    }
    with pytest.raises(ContractError, match="control characters"):
        decode_receipt(json.dumps(body))


def test_the_feed_stays_well_formed_even_for_text_stored_before_the_rule(
    client: FlaskClient, make_token, city
) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    for bad in ("\x01", "\x00"):
        assert (
            client.post(
                "/api/v1/bulletins", json=_bulletin(title=f"沂河{bad}"), headers=_auth(linyi)
            ).status_code
            == 422
        )
    good = client.post("/api/v1/bulletins", json=_bulletin(title='A & <B> ]]> "C"'), headers=_auth(linyi))
    assert good.status_code == 201
    # A row written past the contracts, as an older hub may have stored it.
    old = Bulletin(
        public_id=uuid.uuid4(),
        kind="bulletin",
        issuing_city=city("linyi"),
        category="natural_disaster",
        # PostgreSQL cannot store NUL at all; SQLite can, so an old SQLite hub may hold one.
        area="沂河\x00流域" if db.engine.dialect.name == "sqlite" else "沂河\x02流域",
        title="沂河\x01洪水\x0b",
        text="x",
        scope="public",
        receipt_deadline=datetime.now(UTC) + timedelta(minutes=30),
        issued_at=datetime.now(UTC),
    )
    db.session.add(old)
    db.session.commit()
    for token in (linyi, xuzhou):
        response = client.get("/api/v1/cap/feed.atom", headers=_auth(token))
        assert response.mimetype == "application/atom+xml"
        feed = fromstring(response.data)
        titles = [e.findtext(f"{ATOM}title") for e in feed.iter(f"{ATOM}entry")]
        assert 'A & <B> ]]> "C"' in titles
        assert "沂河\ufffd洪水\ufffd" in titles
        assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
