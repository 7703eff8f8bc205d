"""The mutual-aid API: the whole lifecycle by bearer tokens, own-city rules, EDXL-RM out and in."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from contracts import edxl_rm as rm
from hub.extensions import db
from hub.kernel.models import AuditEntry
from hub.mutual_aid.models import AidCommitment, AidRequest, AidResource
from tests.hub.mutual_aid.factories import CONTACT, entry, line


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(make_token) -> dict[str, str]:
    return {slug: make_token(slug) for slug in ("xuzhou", "linyi", "zaozhuang")}


def _setup(client: FlaskClient, tokens) -> tuple[dict, dict]:
    pumps = entry().model_dump(mode="json")
    put = client.put("/api/v1/aid/registry/pump-1", json=pumps, headers=_h(tokens["xuzhou"]))
    assert put.status_code == 200, put.get_json()
    body = {
        "title": "沂河洪水",
        "lines": [line(quantity=8).model_dump(mode="json")],
        "contact": CONTACT.model_dump(),
    }
    created = client.post("/api/v1/aid/requests", json=body, headers=_h(tokens["linyi"]))
    assert created.status_code == 201, created.get_json()
    return put.get_json(), created.get_json()


def _audits() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) or 0


def test_the_whole_lifecycle_through_the_api(client: FlaskClient, tokens) -> None:
    pumps, request = _setup(client, tokens)
    line_pk = request["progress"][0]["line"]
    offered = client.post(
        f"/api/v1/aid/lines/{line_pk}/offers", json={"resource_id": pumps["id"]}, headers=_h(tokens["xuzhou"])
    )
    assert offered.status_code == 201 and offered.get_json()["quantity"] == "8.000"
    cid = offered.get_json()["id"]
    for action, token, body in (
        ("accept", "linyi", None),
        ("authorise", "xuzhou", {"order_number": "XZ-2026-7"}),
        ("dispatch", "xuzhou", None),
        ("arrive", "linyi", None),
        ("release", "linyi", None),
        ("return", "xuzhou", {"consumed": "1"}),
    ):
        answer = client.post(f"/api/v1/aid/commitments/{cid}/{action}", json=body, headers=_h(tokens[token]))
        assert answer.status_code == 200, (action, answer.get_json())
    progress = client.get(f"/api/v1/aid/requests/{request['id']}", headers=_h(tokens["linyi"])).get_json()
    assert progress["progress"][0]["returned"] == "7.000"
    resource = db.session.get(AidResource, pumps["id"])
    db.session.refresh(resource)
    assert (resource.on_hand, resource.reserved, resource.deployed) == (Decimal(9), 0, 0)


def test_another_city_gets_403_and_nothing_changes(client: FlaskClient, tokens) -> None:
    pumps, request = _setup(client, tokens)
    line_pk = request["progress"][0]["line"]
    body = {"resource_id": pumps["id"], "quantity": "2"}
    assert (
        client.post(
            f"/api/v1/aid/lines/{line_pk}/offers", json=body, headers=_h(tokens["zaozhuang"])
        ).status_code
        == 403
    )
    cid = client.post(
        f"/api/v1/aid/lines/{line_pk}/offers", json=body, headers=_h(tokens["xuzhou"])
    ).get_json()["id"]
    before = _audits()
    for action, token in (("accept", "xuzhou"), ("accept", "zaozhuang"), ("withdraw", "linyi")):
        answer = client.post(f"/api/v1/aid/commitments/{cid}/{action}", headers=_h(tokens[token]))
        assert answer.status_code == 403, action
    assert (
        client.put(
            "/api/v1/aid/registry/pump-1", json=entry().model_dump(mode="json"), headers=_h(tokens["linyi"])
        ).status_code
        == 403
    )
    db.session.expire_all()
    assert db.session.get(AidCommitment, cid).state == "offered" and _audits() == before
    assert db.session.get(AidResource, pumps["id"]).reserved == 0


def test_over_commitment_is_a_409_with_what_is_left(client: FlaskClient, tokens) -> None:
    pumps, request = _setup(client, tokens)
    line_pk = request["progress"][0]["line"]
    body = {"resource_id": pumps["id"], "quantity": "11"}
    answer = client.post(f"/api/v1/aid/lines/{line_pk}/offers", json=body, headers=_h(tokens["xuzhou"]))
    error = answer.get_json()["error"]
    assert answer.status_code == 409 and error["details"]["available"] == "10.000"


def test_edxl_export_chains_and_imports_back(client: FlaskClient, tokens) -> None:
    pumps, request = _setup(client, tokens)
    line_pk = request["progress"][0]["line"]
    offer = client.post(
        f"/api/v1/aid/lines/{line_pk}/offers", json={"resource_id": pumps["id"]}, headers=_h(tokens["xuzhou"])
    ).get_json()
    client.post(f"/api/v1/aid/commitments/{offer['id']}/accept", headers=_h(tokens["linyi"]))
    url = f"/api/v1/aid/requests/{request['id']}/edxl"
    first = client.get(url, headers=_h(tokens["zaozhuang"]))
    assert first.status_code == 200 and first.headers["X-Message-Count"] == "3"
    messages = [
        rm.parse_rm(client.get(f"{url}?step={i}", headers=_h(tokens["linyi"])).data) for i in range(3)
    ]
    assert [m.type for m in messages] == [
        rm.MessageType.REQUEST_RESOURCE,
        rm.MessageType.RESPONSE_TO_REQUEST_RESOURCE,
        rm.MessageType.REQUISITION_RESOURCE,
    ]
    origin = messages[0].message_id
    assert all(m.originating_message_id == origin for m in messages)
    assert [m.preceding_message_id for m in messages[1:]] == [origin, messages[1].message_id]

    # The partner's own RequestResource comes back in as a request of the sending city.
    imported = client.post(
        "/api/v1/aid/edxl", data=first.data, content_type="application/xml", headers=_h(tokens["zaozhuang"])
    )
    assert imported.status_code == 201, imported.get_json()
    assert imported.get_json()["requesting_city"] == "zaozhuang"
    assert Decimal(str(imported.get_json()["lines"][0]["quantity"])) == 8

    # The owner's CommitResource authorises the commitment, once; another city may not send it.
    commit = rm.reply(
        messages[2],
        rm.MessageType.COMMIT_RESOURCE,
        message_id="urn:xuzhou:commit:1",
        sent_at=messages[2].sent_at,
        contacts=(rm.Contact(role=rm.ContactRole.SENDER, description="xuzhou"),),
        resources=(
            rm.ResourceInfo(
                element_id="L1",
                response=rm.Response(preceding_element_id="L1", type=rm.ResponseType.ACCEPT),
                order_id="XZ-88",
                quantity=messages[2].resources[0].quantity,
            ),
        ),
    )
    xml = rm.build_rm(commit)
    refused = client.post(
        "/api/v1/aid/edxl", data=xml, content_type="application/xml", headers=_h(tokens["linyi"])
    )
    assert refused.status_code == 403
    for _ in range(2):
        done = client.post(
            "/api/v1/aid/edxl", data=xml, content_type="application/xml", headers=_h(tokens["xuzhou"])
        )
        assert done.status_code == 200, done.get_json()
        assert done.get_json()["state"] == "authorised" and done.get_json()["order_number"] == "XZ-88"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AidRequest)) == 2
