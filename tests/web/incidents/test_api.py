"""The JSON API: bearer tokens scoped to a city, clear errors, nothing changed on refusal."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.extensions import db
from hub.incidents.models import Incident
from hub.kernel.models import AuditEntry, FlowRequest
from tests.conftest import incident_payload


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_requires_authentication(client: FlaskClient) -> None:
    response = client.get("/api/v1/incidents")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthenticated"
    response = client.get("/api/v1/incidents", headers={"Authorization": "Bearer hh_nonsense"})
    assert response.status_code == 401
    response = client.get("/api/v1/incidents", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401


def test_cities_with_neighbours(client: FlaskClient, make_token) -> None:
    response = client.get("/api/v1/cities", headers=_auth(make_token("linyi")))
    items = {c["slug"]: c for c in response.json["items"]}
    assert len(items) == 10
    assert items["linyi"]["neighbours"] == ["jining", "lianyungang", "xuzhou", "zaozhuang"]
    assert items["linyi"]["name_zh"] == "临沂市"
    assert client.get("/api/v1/cities/atlantis", headers=_auth(make_token("linyi"))).status_code == 404


def test_create_read_and_follow_up(client: FlaskClient, make_token) -> None:
    token = make_token("linyi")
    response = client.post("/api/v1/incidents", json=incident_payload(level="II"), headers=_auth(token))
    assert response.status_code == 201, response.json
    body = response.json
    assert body["reporting_city"] == "linyi"
    assert body["level"] == "II"
    assert response.headers["Location"].endswith(body["id"])
    assert _count(FlowRequest) == 1
    got = client.get(f"/api/v1/incidents/{body['id']}", headers=_auth(token)).json
    assert got["title"] == "沂河水位上涨"
    response = client.post(
        f"/api/v1/incidents/{body['id']}/reports", json={"body": "水位回落"}, headers=_auth(token)
    )
    assert response.status_code == 201
    assert response.json["status"] == "responding"
    assert response.json["reports"][0]["body"] == "水位回落"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "incident.created")).one()
    assert entry.actor_kind == "partner"


def test_list_filters_and_pagination(client: FlaskClient, make_token, make_incident) -> None:
    for n in range(3):
        make_incident("linyi", "IV", title=f"临沂{n}")
    make_incident("heze", "I", title="菏泽特大")
    token = make_token("xuzhou")
    page = client.get("/api/v1/incidents?city=linyi&per_page=2&page=2", headers=_auth(token)).json
    assert (page["total"], page["pages"], len(page["items"])) == (3, 2, 1)
    severe = client.get("/api/v1/incidents?level=II", headers=_auth(token)).json
    assert [i["title"] for i in severe["items"]] == ["菏泽特大"]
    bad = client.get("/api/v1/incidents?level=V", headers=_auth(token))
    assert bad.status_code == 422
    assert bad.json["error"]["details"][0]["location"] == "level"
    assert client.get("/api/v1/incidents?per_page=500", headers=_auth(token)).status_code == 422
    assert client.get("/api/v1/incidents?city=atlantis", headers=_auth(token)).status_code == 404
    assert client.get("/api/v1/incidents?since=2026-01-01T00:00", headers=_auth(token)).status_code == 422


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "mentions"),
    [
        (b'{"title": "unterminated', "application/json", 422, "invalid_input", "malformed JSON"),
        (json.dumps(incident_payload(level=7)).encode(), "application/json", 422, "invalid_input", "level"),
        (
            json.dumps(incident_payload(occurred_at="2026-11-29T08:00:00")).encode(),
            "application/json",
            422,
            "invalid_input",
            "occurred_at",
        ),
        (
            json.dumps(incident_payload(exercise="yes")).encode(),
            "application/json",
            422,
            "invalid_input",
            "exercise",
        ),
        (
            json.dumps(incident_payload(surprise=1)).encode(),
            "application/json",
            422,
            "invalid_input",
            "surprise",
        ),
        (
            json.dumps(incident_payload(affected_cities=["atlantis"])).encode(),
            "application/json",
            404,
            "not_found",
            "atlantis",
        ),
        (json.dumps(incident_payload()).encode(), "text/plain", 422, "invalid_input", "JSON"),
        (b"{" + b" " * 70_000 + b"}", "application/json", 413, "payload_too_large", ""),
    ],
)
def test_bad_input_gets_clear_error_and_changes_nothing(
    client: FlaskClient, make_token, body: bytes, content_type: str, status: int, code: str, mentions: str
) -> None:
    token = make_token("linyi")
    audit_before = _count(AuditEntry)
    response = client.post("/api/v1/incidents", data=body, content_type=content_type, headers=_auth(token))
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert mentions in response.json["error"]["message"]
    assert _count(Incident) == 0
    assert _count(AuditEntry) == audit_before


def test_another_citys_incident_is_forbidden(client: FlaskClient, make_token) -> None:
    linyi = make_token("linyi")
    created = client.post("/api/v1/incidents", json=incident_payload(), headers=_auth(linyi)).json
    audit_before = _count(AuditEntry)
    response = client.post(
        f"/api/v1/incidents/{created['id']}/reports", json={"body": "越权"}, headers=_auth(make_token("heze"))
    )
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert client.get(f"/api/v1/incidents/{created['id']}", headers=_auth(linyi)).json["reports"] == []
    assert _count(AuditEntry) == audit_before + 1  # the token issued for heze, nothing else


def test_session_writes_need_the_csrf_header(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post("/api/v1/incidents", json=incident_payload())
    assert response.status_code == 403
    response = client.post(
        "/api/v1/incidents", json=incident_payload(), headers={"X-CSRFToken": auth.csrf("/")}
    )
    assert response.status_code == 201


def test_notifications_for_own_city_only(client: FlaskClient, make_token, make_incident) -> None:
    from hub.incidents import notifications

    incident = make_incident("linyi", "II")
    notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    db.session.commit()
    xuzhou = client.get("/api/v1/notifications", headers=_auth(make_token("xuzhou"))).json["items"]
    assert [n["recipient_city"] for n in xuzhou] == ["xuzhou"]
    assert client.get("/api/v1/notifications", headers=_auth(make_token("heze"))).json["items"] == []
    response = client.post(f"/api/v1/notifications/{xuzhou[0]['id']}/read", headers=_auth(make_token("heze")))
    assert response.status_code == 403
    response = client.post(
        f"/api/v1/notifications/{xuzhou[0]['id']}/read", headers=_auth(make_token("xuzhou"))
    )
    assert response.status_code == 200


def test_unknown_route_answers_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_patch_changes_own_incident_only(client: FlaskClient, make_token) -> None:
    linyi = make_token("linyi")
    created = client.post("/api/v1/incidents", json=incident_payload(), headers=_auth(linyi)).json
    forbidden = client.patch(
        f"/api/v1/incidents/{created['id']}", json={"level": "I"}, headers=_auth(make_token("heze"))
    )
    assert forbidden.status_code == 403
    changed = client.patch(
        f"/api/v1/incidents/{created['id']}",
        json={"level": "II", "status": "responding"},
        headers=_auth(linyi),
    )
    assert changed.status_code == 200, changed.json
    assert (changed.json["level"], changed.json["status"]) == ("II", "responding")
    assert _count(FlowRequest) == 1
    bad = client.patch(f"/api/v1/incidents/{created['id']}", json={"level": "V"}, headers=_auth(linyi))
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "query", ["page=²", "per_page=" + "9" * 5000, "page=99999999999999999999", "page=-1"]
)
def test_odd_numbers_in_the_query_are_a_clear_422(client: FlaskClient, make_token, query: str) -> None:
    response = client.get(f"/api/v1/incidents?{query}", headers=_auth(make_token("linyi")))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_input"
