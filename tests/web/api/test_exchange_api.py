"""Exchange over the API: receipts once, restricted bulletins hidden everywhere, CAP in and out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.bulletins.models import Bulletin
from hub.extensions import db

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol2;</identifier></alert>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _bulletin(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "kind": "warning",
        "colour": "red",
        "category": "natural_disaster",
        "area": "沂河流域",
        "title": "沂河洪水红色预警",
        "text": "沂河临沂段即将超保证水位。",
        "addressed_cities": ["xuzhou"],
        "scope": "restricted",
        "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=20)).isoformat(),
    }
    body.update(overrides)
    return body


def test_receipt_once_and_restricted_hidden_from_others(client: FlaskClient, make_token) -> None:
    linyi, xuzhou, heze = make_token("linyi"), make_token("xuzhou"), make_token("heze")
    created = client.post("/api/v1/bulletins", json=_bulletin(), headers=_auth(linyi))
    assert created.status_code == 201, created.json
    bulletin_id = created.json["id"]
    first = client.post(
        f"/api/v1/bulletins/{bulletin_id}/receipts",
        json={"acknowledged_by": "徐州值班员"},
        headers=_auth(xuzhou),
    )
    again = client.post(
        f"/api/v1/bulletins/{bulletin_id}/receipts",
        json={"acknowledged_by": "徐州值班员"},
        headers=_auth(xuzhou),
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["receipt_at"] == again.json["receipt_at"]
    # Heze is not an addressee: the bulletin does not exist for it, in any view.
    assert client.get(f"/api/v1/bulletins/{bulletin_id}", headers=_auth(heze)).status_code == 404
    assert client.get(f"/api/v1/bulletins/{bulletin_id}/cap", headers=_auth(heze)).status_code == 404
    assert (
        client.post(
            f"/api/v1/bulletins/{bulletin_id}/receipts", json={"acknowledged_by": "x"}, headers=_auth(heze)
        ).status_code
        == 404
    )
    assert client.get("/api/v1/bulletins", headers=_auth(heze)).json["items"] == []
    assert bulletin_id not in client.get("/api/v1/cap/feed.atom", headers=_auth(heze)).get_data(as_text=True)
    assert bulletin_id in client.get("/api/v1/cap/feed.atom", headers=_auth(xuzhou)).get_data(as_text=True)


def test_cap_out_and_back_in(client: FlaskClient, make_token) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    bulletin_id = client.post("/api/v1/bulletins", json=_bulletin(scope="public"), headers=_auth(linyi)).json[
        "id"
    ]
    cap = client.get(f"/api/v1/bulletins/{bulletin_id}/cap", headers=_auth(xuzhou))
    assert cap.mimetype == "application/cap+xml"
    assert "<identifier>371300000" in cap.get_data(as_text=True)
    reissued = client.post(
        "/api/v1/warnings/cap", data=cap.data, content_type="application/cap+xml", headers=_auth(xuzhou)
    )
    assert reissued.status_code == 201, reissued.json
    assert (reissued.json["colour"], reissued.json["title"], reissued.json["issuing_city"]) == (
        "red",
        "沂河洪水红色预警",
        "xuzhou",
    )
    # The CAP names Xuzhou as the addressee; re-issued by Xuzhou itself, it goes to its neighbours.
    assert "xuzhou" not in reissued.json["addressed_cities"]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        (BOMB, "DTD"),
        (EXTERNAL, "DTD"),
        (b"<alert", "XML"),
        (b"<notcap/>", "alert"),
        (b"x" * 70_000, "bytes"),
    ],
)
def test_hostile_cap_is_refused_and_nothing_is_stored(
    client: FlaskClient, make_token, body: bytes, mentions: str
) -> None:
    response = client.post(
        "/api/v1/warnings/cap",
        data=body,
        content_type="application/cap+xml",
        headers=_auth(make_token("linyi")),
    )
    assert response.status_code in (413, 422), response.json
    assert mentions.lower() in response.json["error"]["message"].lower() or response.status_code == 413
    assert db.session.scalar(select(func.count()).select_from(Bulletin)) == 0


def test_bad_bulletin_bodies(client: FlaskClient, make_token) -> None:
    token = make_token("linyi")
    no_colour = client.post("/api/v1/bulletins", json=_bulletin(colour=None), headers=_auth(token))
    assert no_colour.status_code == 422 and "colour" in no_colour.json["error"]["message"]
    unknown = client.post(
        "/api/v1/bulletins", json=_bulletin(addressed_cities=["atlantis"]), headers=_auth(token)
    )
    assert unknown.status_code == 404
    assert (
        client.post(
            "/api/v1/bulletins", data=b"{", content_type="application/json", headers=_auth(token)
        ).status_code
        == 422
    )


def test_verification_and_daily_report_over_the_api(client: FlaskClient, make_token) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    created = client.post(
        "/api/v1/verifications",
        headers=_auth(linyi),
        json={
            "to_city": "xuzhou",
            "subject": "核实险情",
            "question": "请核实。",
            "deadline": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
    )
    assert created.status_code == 201
    answered = client.post(
        f"/api/v1/verifications/{created.json['id']}/answer",
        headers=_auth(xuzhou),
        json={"answer": "已核实，属实。"},
    )
    assert answered.status_code == 200 and answered.json["answer"] == "已核实，属实。"
    assert (
        client.post(
            f"/api/v1/verifications/{created.json['id']}/answer",
            headers=_auth(xuzhou),
            json={"answer": "again"},
        ).status_code
        == 409
    )
    filed = client.post("/api/v1/daily-reports", headers=_auth(linyi), json={"zero": True})
    assert filed.status_code == 201 and filed.json["zero"] is True
    assert client.post("/api/v1/daily-reports", headers=_auth(linyi), json={"zero": True}).status_code == 409


def test_platform_answers_in_the_partner_contract_form(client: FlaskClient, make_token) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    created = client.post(
        "/api/v1/verifications",
        headers=_auth(linyi),
        json={
            "to_city": "xuzhou",
            "subject": "核实",
            "question": "请核实。",
            "deadline": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
    ).json
    body = {
        "request_id": created["id"],
        "city": "xuzhou",
        "answer": "平台答复：属实。",
        "answered_at": datetime.now(UTC).isoformat(),
    }
    response = client.post(
        f"/api/v1/verification-requests/{created['id']}/answers", json=body, headers=_auth(xuzhou)
    )
    assert response.status_code == 200, response.json
    assert response.json["answer"] == "平台答复：属实。"


def test_observers_cannot_acknowledge_or_start_a_sync(
    client: FlaskClient, auth, make_user, make_token
) -> None:
    from hub.kernel.models import Role

    bulletin_id = client.post("/api/v1/bulletins", json=_bulletin(), headers=_auth(make_token("linyi"))).json[
        "id"
    ]
    make_user("obs", "xuzhou", Role.OBSERVER)
    auth.login("obs")
    headers = {"X-CSRFToken": auth.csrf("/")}
    refused = client.post(
        f"/api/v1/bulletins/{bulletin_id}/receipts", json={"acknowledged_by": "观察员"}, headers=headers
    )
    assert refused.status_code == 403


def test_unknown_incident_in_a_verification_request_is_a_clear_404(client: FlaskClient, make_token) -> None:
    body = {
        "to_city": "xuzhou",
        "subject": "核实",
        "question": "请核实。",
        "incident_id": 99999999,
        "deadline": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    response = client.post("/api/v1/verifications", json=body, headers=_auth(make_token("linyi")))
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    body["incident_id"] = 2**70
    assert (
        client.post("/api/v1/verifications", json=body, headers=_auth(make_token("linyi"))).status_code == 422
    )
