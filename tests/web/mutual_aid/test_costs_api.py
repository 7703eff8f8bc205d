"""Costs through the API and the request page: enter, sign for one's own side, freeze, export as CSV."""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient

from hub.extensions import db
from hub.mutual_aid.models import AidCommitment, AidRequest
from tests.web.mutual_aid.test_api import _audits, _h, _setup


@pytest.fixture
def tokens(make_token) -> dict[str, str]:
    return {slug: make_token(slug) for slug in ("xuzhou", "linyi", "zaozhuang")}


def _returned(client: FlaskClient, tokens) -> int:
    pumps, request = _setup(client, tokens)
    line_pk = request["progress"][0]["line"]
    cid = client.post(
        f"/api/v1/aid/lines/{line_pk}/offers", json={"resource_id": pumps["id"]}, headers=_h(tokens["xuzhou"])
    ).get_json()["id"]
    for action, token, body in (
        ("accept", "linyi", None),
        ("authorise", "xuzhou", {"order_number": "XZ-9"}),
        ("dispatch", "xuzhou", None),
        ("arrive", "linyi", None),
        ("release", "linyi", None),
        ("return", "xuzhou", None),
    ):
        answer = client.post(f"/api/v1/aid/commitments/{cid}/{action}", json=body, headers=_h(tokens[token]))
        assert answer.status_code == 200, (action, answer.get_json())
    return cid


def test_cost_entered_signed_by_both_then_frozen(client: FlaskClient, tokens) -> None:
    cid = _returned(client, tokens)
    entered = client.put(
        f"/api/v1/aid/commitments/{cid}/cost", json={"amount": "3100.00"}, headers=_h(tokens["xuzhou"])
    )
    assert entered.status_code == 200 and entered.get_json()["actual_cost"] == "3100.00"
    before = _audits()
    refused = (
        client.put(f"/api/v1/aid/commitments/{cid}/cost", json={"amount": "1"}, headers=_h(tokens["linyi"])),
        client.post(
            f"/api/v1/aid/commitments/{cid}/cost/sign", json={"side": "owner"}, headers=_h(tokens["linyi"])
        ),
        client.post(f"/api/v1/aid/commitments/{cid}/cost/sign", headers=_h(tokens["zaozhuang"])),
    )
    assert [r.status_code for r in refused] == [403, 403, 403]
    db.session.expire_all()
    c = db.session.get(AidCommitment, cid)
    assert c.actual_cost == 3100 and c.owner_signed_at is None and _audits() == before
    assert (
        client.post(f"/api/v1/aid/commitments/{cid}/cost/sign", headers=_h(tokens["xuzhou"])).status_code
        == 200
    )
    signed = client.post(
        f"/api/v1/aid/commitments/{cid}/cost/sign", json={"side": "requester"}, headers=_h(tokens["linyi"])
    )
    assert signed.status_code == 200 and signed.get_json()["cost_frozen"] is True
    again = client.put(
        f"/api/v1/aid/commitments/{cid}/cost", json={"amount": "1.00"}, headers=_h(tokens["xuzhou"])
    )
    assert again.status_code == 409


def test_costs_export_as_csv_per_city_and_year_and_per_incident(
    client: FlaskClient, tokens, make_incident
) -> None:
    cid = _returned(client, tokens)
    c = db.session.get(AidCommitment, cid)
    incident = make_incident("linyi")
    db.session.get(AidRequest, c.request_id).incident_id = incident.id
    db.session.commit()
    for query in (f"city=xuzhou&year={c.start_at.year}", f"incident={incident.public_id}"):
        answer = client.get(f"/api/v1/aid/costs.csv?{query}", headers=_h(tokens["zaozhuang"]))
        assert answer.status_code == 200 and answer.mimetype == "text/csv", query
        rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
        assert [r["commitment"] for r in rows] == [str(c.public_id)]
        assert rows[0]["estimated_cost"] == "2400.00" and rows[0]["owner_city"] == "xuzhou"
    assert client.get("/api/v1/aid/costs.csv?city=xuzhou", headers=_h(tokens["linyi"])).status_code == 422


def test_the_request_page_shows_the_costs_and_the_sign_button(
    client: FlaskClient, tokens, auth, make_user
) -> None:
    cid = _returned(client, tokens)
    client.put(f"/api/v1/aid/commitments/{cid}/cost", json={"amount": "88.00"}, headers=_h(tokens["xuzhou"]))
    c = db.session.get(AidCommitment, cid)
    public_id = c.request.public_id
    make_user("ly", "linyi")
    auth.login("ly")
    page = client.get(f"/aid/requests/{public_id}").get_data(as_text=True)
    assert 'id="aid-costs"' in page and "88.00" in page and 'data-cost-action="sign"' in page
    signed = client.post(
        f"/aid/commitments/{cid}/cost/sign", data={"csrf_token": auth.csrf(f"/aid/requests/{public_id}")}
    )
    assert signed.status_code == 302
    db.session.expire_all()
    assert db.session.get(AidCommitment, cid).requester_signed_by == "ly"
