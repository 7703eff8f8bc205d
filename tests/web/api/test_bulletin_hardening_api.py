"""Bulletins over the API: cancelling, the same CAP alert twice, expired warnings refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.bulletins import services as bulletins
from hub.bulletins.models import Bulletin
from hub.extensions import db
from hub.kernel.models import AuditEntry, FlowRequest, MqttOutbox
from tests.web.api.test_exchange_api import _auth, _bulletin


def _count(model: type, *where: object) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _cap(client: FlaskClient, token: str, **overrides: object) -> bytes:
    bulletin_id = client.post(
        "/api/v1/bulletins", json=_bulletin(scope="public", **overrides), headers=_auth(token)
    ).json["id"]
    return client.get(f"/api/v1/bulletins/{bulletin_id}/cap", headers=_auth(token)).data


def test_the_same_cap_alert_twice_is_a_conflict_naming_the_first(client: FlaskClient, make_token) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    cap = _cap(client, linyi)
    first = client.post(
        "/api/v1/warnings/cap", data=cap, content_type="application/cap+xml", headers=_auth(xuzhou)
    )
    assert first.status_code == 201, first.json
    warnings_before = _count(Bulletin)
    alerts_before = _count(MqttOutbox)
    requests_before = _count(FlowRequest)
    again = client.post(
        "/api/v1/warnings/cap", data=cap, content_type="application/cap+xml", headers=_auth(xuzhou)
    )
    assert again.status_code == 409, again.json
    assert first.json["id"] in again.json["error"]["message"]
    assert "already" in again.json["error"]["message"]
    assert (_count(Bulletin), _count(MqttOutbox), _count(FlowRequest)) == (
        warnings_before,
        alerts_before,
        requests_before,
    )


def test_an_expired_warning_is_refused_from_the_api_and_from_cap(client: FlaskClient, make_token) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    response = client.post("/api/v1/bulletins", json=_bulletin(expires_at=past), headers=_auth(linyi))
    assert response.status_code == 422, response.json
    assert "expired" in response.json["error"]["message"]
    assert _count(Bulletin) == 0
    # A CAP alert whose <expires> has passed: built from a live one, its expiry moved back.
    cap = _cap(client, linyi, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    stale = re.sub(rb"<expires>[^<]+</expires>", b"<expires>2020-01-01T08:00:00+08:00</expires>", cap)
    assert stale != cap
    count, queued, requests = _count(Bulletin), _count(MqttOutbox), _count(FlowRequest)
    refused = client.post(
        "/api/v1/warnings/cap", data=stale, content_type="application/cap+xml", headers=_auth(xuzhou)
    )
    assert refused.status_code == 422, refused.json
    assert "expired" in refused.json["error"]["message"]
    assert (_count(Bulletin), _count(MqttOutbox), _count(FlowRequest)) == (count, queued, requests)


def test_the_issuing_city_cancels_over_the_api(client: FlaskClient, make_token) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    bulletin_id = client.post("/api/v1/bulletins", json=_bulletin(), headers=_auth(linyi)).json["id"]
    refused = client.post(f"/api/v1/bulletins/{bulletin_id}/cancel", headers=_auth(xuzhou))
    assert refused.status_code == 403
    response = client.post(f"/api/v1/bulletins/{bulletin_id}/cancel", headers=_auth(linyi))
    assert response.status_code == 200, response.json
    assert response.json["cancelled"] is True
    bulletin = db.session.scalars(select(Bulletin)).one()
    assert bulletin.cancelled_at is not None
    assert _count(FlowRequest, FlowRequest.flow_name == bulletins.CANCEL) == 1
    assert _count(AuditEntry, AuditEntry.action == "bulletin.cancelled") == 1
    # Again: nothing changes, nothing more is queued.
    assert client.post(f"/api/v1/bulletins/{bulletin_id}/cancel", headers=_auth(linyi)).status_code == 200
    assert _count(FlowRequest, FlowRequest.flow_name == bulletins.CANCEL) == 1
    # Its CAP is now a Cancel that references the original alert.
    cap = client.get(f"/api/v1/bulletins/{bulletin_id}/cap", headers=_auth(linyi)).get_data(as_text=True)
    assert "<msgType>Cancel</msgType>" in cap and "<references>" in cap
    # It leaves the current feed, and is no longer redelivered.
    assert bulletins.undelivered(db.session, bulletin.id) == []
