"""Property-based run over the generated API document against a real server of the app.

Calls come from Xuzhou's platform with a bearer token, and path parameters are sometimes the ids
of things that exist (an incident of its own, a notice to it, a bulletin and a verification
request addressed to it, a consultation it called and an action item it owns, an entry of its aid
registry, a request for aid and its offer for it), so operations are really reached, not only
refused with 401 or 404. No answer may be a 5xx, and every answer (status, content type, body)
must be what the document says, for valid requests and for requests that break the document
(which must be refused, not crash).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.serving import WSGIRequestHandler, make_server

from hub.extensions import db
from hub.incidents import notifications
from hub.kernel import cities
from tests.hub.mutual_aid.factories import CONTACT, entry, line

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class _QuietHandler(WSGIRequestHandler):
    """Leave out the access log: a run makes hundreds of requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def api_server(app: Flask) -> Iterator[str]:
    """Serve the app on a free loopback port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="api-under-test", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def existing(
    client: FlaskClient, make_token: Callable[[str], str], make_incident: Callable[..., Any]
) -> dict:
    """Ids of things Xuzhou may act on, by the path that names them."""
    soon = datetime.now(UTC) + timedelta(hours=1)
    linyi = _auth(make_token("linyi"))
    own = make_incident("xuzhou", "III", title="徐州内涝")
    neighbours = make_incident("linyi", "IV", title="临沂山火")
    notifications.deliver(db.session, neighbours.id, "xuzhou", "neighbour", flow_run_id=None)
    db.session.commit()
    bulletin = client.post(
        "/api/v1/bulletins",
        headers=linyi,
        json={
            "kind": "warning",
            "colour": "red",
            "category": "natural_disaster",
            "area": "沂河流域",
            "title": "沂河洪水红色预警",
            "text": "沂河临沂段即将超保证水位。",
            "addressed_cities": ["xuzhou"],
            "scope": "restricted",
            "receipt_deadline": soon.isoformat(),
        },
    )
    verification = client.post(
        "/api/v1/verifications",
        headers=linyi,
        json={
            "to_city": "xuzhou",
            "subject": "核实险情",
            "question": "请核实。",
            "deadline": soon.isoformat(),
        },
    )
    token = make_token("xuzhou")
    xuzhou = _auth(token)
    expert = client.put(
        "/api/v1/aid/registry/expert-1",
        json=entry(external_id="expert-1", type_code="expert.flood").model_dump(mode="json"),
        headers=xuzhou,
    )
    assert expert.status_code == 200
    meeting = client.post(
        "/api/v1/consultations",
        headers=xuzhou,
        json={
            "title": "沂河汛情会商",
            "starts_at": soon.isoformat(),
            "invited_cities": ["linyi"],
            "expert_specialities": ["expert.flood"],
        },
    )
    assert meeting.json["experts"], "the call invites xuzhou's flood expert"
    resolution = client.post(
        f"/api/v1/consultations/{meeting.json['id']}/resolutions",
        headers=xuzhou,
        json={
            "text": "加强巡查",
            "decision_mode": "consensus",
            "follow_up": True,
            "action_items": [
                {
                    "owner_city": "xuzhou",
                    "title": "巡查",
                    "due_on": (soon + timedelta(days=7)).date().isoformat(),
                }
            ],
        },
    )
    assert meeting.status_code == resolution.status_code == 201

    pumps = client.put(
        "/api/v1/aid/registry/pump-1", json=entry().model_dump(mode="json"), headers=_auth(token)
    )
    aid_request = client.post(
        "/api/v1/aid/requests",
        headers=linyi,
        json={
            "title": "沂河洪水",
            "lines": [line(quantity=2).model_dump(mode="json")],
            "contact": CONTACT.model_dump(),
        },
    )
    assert pumps.status_code == 200 and aid_request.status_code == 201
    aid_line = aid_request.json["progress"][0]["line"]
    offer = client.post(
        f"/api/v1/aid/lines/{aid_line}/offers",
        headers=_auth(token),
        json={"resource_id": pumps.json["id"], "quantity": "1"},
    )
    assert offer.status_code == 201
    notices = client.get("/api/v1/notifications", headers=_auth(token)).json["items"]
    assert bulletin.status_code == verification.status_code == 201
    assert notices
    return {
        "token": token,
        "cities": [c.slug for c in cities.all_cities(db.session)],
        "/incidents": {"incident_id": str(own.public_id)},
        "/notifications": {"notification_id": notices[0]["id"]},
        "/bulletins": {"public_id": bulletin.json["id"]},
        "/verification": {"public_id": verification.json["id"]},
        "/consultations/calendar": {"city": "xuzhou"},
        "/consultations/assessment": {"year": str(soon.year)},
        "/consultations/{public_id}/experts": {
            "public_id": meeting.json["id"],
            "invitation_id": meeting.json["experts"][0]["id"],
        },
        "/consultations": {"public_id": meeting.json["id"]},
        "/action-items": {"public_id": resolution.json["action_items"][0]["id"]},
        "/cities": {"slug": "xuzhou"},
        "/partners": {"slug": "xuzhou"},
        "/aid/registry": {"external_id": "pump-1"},
        "/aid/requests": {"public_id": aid_request.json["id"]},
        "/aid/lines": {"line_id": str(aid_line)},
        "/aid/commitments": {"commitment_id": str(offer.json["id"])},
    }


def _known_path_parameters(path: str, existing: dict[str, Any]) -> dict[str, str] | None:
    for prefix, parameters in existing.items():
        if prefix.startswith("/") and path.startswith(prefix):
            return cast(dict[str, str], parameters)
    return None


def _meaningful(cities: list[str]) -> Callable[[schemathesis.Case], schemathesis.Case]:
    """Name member cities in bodies, and the path's request in a platform's answer.

    Generated city slugs are almost never a member's, so creating would always be a 404.
    """

    def member(slug: object) -> object:
        return cities[sum(map(ord, slug)) % len(cities)] if isinstance(slug, str) else slug

    def fix(case: schemathesis.Case) -> schemathesis.Case:
        if isinstance(case.body, dict):
            for field in ("affected_cities", "addressed_cities"):
                if isinstance(case.body.get(field), list):
                    case.body[field] = list(dict.fromkeys(member(c) for c in case.body[field]))
            if "to_city" in case.body:
                case.body["to_city"] = member(case.body["to_city"])
            if "request_id" in case.body and case.path_parameters:
                case.body["request_id"] = case.path_parameters.get("public_id", case.body["request_id"])
        return case

    return fix


@pytest.mark.parametrize(
    ("mode", "examples"),
    [(GenerationMode.POSITIVE, 20), (GenerationMode.NEGATIVE, 8)],
    ids=["valid-requests", "invalid-requests"],
)
def test_every_answer_matches_the_document(
    api_server: str, existing: dict[str, Any], mode: GenerationMode, examples: int
) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server}/api/v1/openapi.json")
    headers = _auth(existing["token"])
    base_url = f"{api_server}/api/v1"
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:
        takes_input = bool(operation.path_parameters or operation.query or operation.body)
        if mode is GenerationMode.NEGATIVE and not takes_input:
            continue  # nothing to get wrong: an operation without parameters has no invalid request
        strategy = operation.as_strategy(mode)
        known = _known_path_parameters(operation.path, existing)
        if known is not None and operation.path_parameters:
            strategy = st.one_of(strategy, operation.as_strategy(mode, path_parameters=known))
        if mode is GenerationMode.POSITIVE:
            strategy = strategy.map(_meaningful(existing["cities"]))

        @given(case=strategy)
        @settings(
            max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        run()
