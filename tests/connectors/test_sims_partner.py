"""The simulated city platform: its HTTP answers, receipts posted to a hub, switches, drift."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
import requests

from connectors.partner_client import PartnerClient
from connectors.sims.partner import PartnerSimulator, decode_cursor, encode_cursor, run_partner
from contracts.partner import (
    HUB_ANSWER_PATH,
    HUB_RECEIPT_PATH,
    FeedKind,
    IncidentPage,
    ResourcePage,
    VerificationRequestDelivery,
    WarningPage,
    decode_error,
    decode_receipt,
    decode_verification_answer,
    encode,
)
from tests.connectors.conftest import wait_until
from tests.connectors.test_partner_client import (
    TOKEN,
    Reply,
    StubServer,
    bulletin,
    client_for,
    simulators,
    stubs,
)

__all__ = ["simulators", "stubs"]  # fixtures shared with the client's tests

HUB_TOKEN = "hub-token-linyi"


def _hub(stubs: Callable[..., StubServer], *statuses: int) -> StubServer:
    """Stand up a fake hub that answers each post with the next status, then 201."""
    answers = iter(statuses)

    def respond(*_: object) -> Reply:
        return next(answers, 201), {}, b"{}"

    return stubs(respond)


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_delayed_receipts_are_posted_to_the_hub_with_its_token(
    simulators: Callable[..., PartnerSimulator], stubs: Callable[..., StubServer]
) -> None:
    hub = _hub(stubs, 503)
    sim = simulators(receipt_mode="delayed", receipt_delay=0.05, hub_url=hub.url, hub_token=HUB_TOKEN)
    sent = bulletin()
    with client_for(sim.url) as client:
        ack = client.deliver_bulletin(sent)
        assert ack.accepted and ack.receipt is None
        client.deliver_bulletin(sent)
    wait_until(lambda: sim.stats.receipts_posted == 1, what="the receipt reached the hub")
    # The first post met a 503 and was tried again; the duplicate delivery posted nothing more.
    assert len(hub.requests) == 2
    method, path, headers, body = hub.requests[-1]
    assert (method, path) == ("POST", HUB_RECEIPT_PATH.format(bulletin_id=sent.id))
    assert headers["Authorization"] == f"Bearer {HUB_TOKEN}"
    receipt = decode_receipt(body)
    assert (receipt.bulletin_id, receipt.city) == (sent.id, "linyi")
    assert sim.receipts_posted == [receipt]


def test_a_hub_that_refuses_a_receipt_is_not_asked_again(
    simulators: Callable[..., PartnerSimulator], stubs: Callable[..., StubServer]
) -> None:
    hub = _hub(stubs, 404)
    sim = simulators(receipt_mode="delayed", receipt_delay=0.01, hub_url=hub.url, hub_token=HUB_TOKEN)
    with client_for(sim.url) as client:
        client.deliver_bulletin(bulletin())
    wait_until(lambda: len(hub.requests) == 1, what="the hub was asked")
    time.sleep(0.4)
    assert len(hub.requests) == 1
    assert sim.stats.receipts_posted == 0


def test_never_mode_gives_no_receipt(simulators: Callable[..., PartnerSimulator]) -> None:
    sim = simulators(receipt_mode="never")
    with client_for(sim.url) as client:
        assert client.deliver_bulletin(bulletin()).receipt is None
    assert sim.stats.receipts_posted == 0


def test_verification_requests_are_answered_at_the_hub(
    simulators: Callable[..., PartnerSimulator], stubs: Callable[..., StubServer]
) -> None:
    hub = _hub(stubs)
    sim = simulators(answer_delay=0.01, receipt_mode="never", hub_url=hub.url, hub_token=HUB_TOKEN)
    now = datetime.now(UTC)
    request = VerificationRequestDelivery(
        id=uuid4(),
        from_city="xuzhou",
        to_city="linyi",
        incident_ref="LY-1",
        question="请核实伤亡情况。",
        deadline=now + timedelta(hours=1),
        issued_at=now,
    )
    with client_for(sim.url) as client:
        client.deliver_verification_request(request)
    wait_until(lambda: sim.stats.answers_posted == 1, what="the answer reached the hub")
    _, path, _, body = hub.requests[0]
    assert path == HUB_ANSWER_PATH.format(request_id=request.id)
    assert decode_verification_answer(body).request_id == request.id


def test_delayed_receipts_need_a_hub() -> None:
    with pytest.raises(ValueError, match="hub_url"):
        PartnerSimulator("linyi", token=TOKEN, receipt_mode="delayed")


def test_http_answers_follow_the_contract(simulators: Callable[..., PartnerSimulator]) -> None:
    sim = simulators()
    with requests.Session() as session:
        unauthorised = session.post(f"{sim.url}/bulletins", data=encode(bulletin()), timeout=2)
        assert unauthorised.status_code == 401
        assert unauthorised.headers["WWW-Authenticate"].startswith("Bearer")
        assert decode_error(unauthorised.content).error.code == "unauthorized"
        broken = session.post(f"{sim.url}/bulletins", data=b'{"kind": "bulletin"', headers=_auth(), timeout=2)
        assert broken.status_code == 422
        assert "malformed JSON" in decode_error(broken.content).error.message
        invalid = session.post(f"{sim.url}/receipts", json={"city": "linyi"}, headers=_auth(), timeout=2)
        assert invalid.status_code == 422
        assert "bulletin_id: required but missing" in decode_error(invalid.content).error.message
        too_big = session.post(f"{sim.url}/bulletins", data=b" " * 300_000, headers=_auth(), timeout=2)
        assert too_big.status_code == 413
        assert session.get(f"{sim.url}/bulletins", headers=_auth(), timeout=2).status_code == 405
        assert session.get(f"{sim.url}/feeds/vehicles", headers=_auth(), timeout=2).status_code == 404
        bad_limit = session.get(f"{sim.url}/feeds/incidents?limit=501", headers=_auth(), timeout=2)
        assert decode_error(bad_limit.content).error.code == "bad_limit"
        # After all those refusals on one kept-alive session, a good request still works.
        page = session.get(f"{sim.url}/feeds/resources?limit=3", headers=_auth(), timeout=2)
        assert page.status_code == 200
        assert len(ResourcePage.model_validate_json(page.content).items) == 3


def test_feeds_serve_chinese_records_of_the_city(simulators: Callable[..., PartnerSimulator]) -> None:
    sim = simulators(centre=(118.326, 35.065))
    with client_for(sim.url) as client:
        incidents = client.fetch_page(FeedKind.INCIDENTS, None, 5)
        warnings = client.fetch_page(FeedKind.WARNINGS, None, 5)
        resources = client.fetch_page(FeedKind.RESOURCES, None, 40)
    assert isinstance(incidents, IncidentPage) and isinstance(warnings, WarningPage)
    assert all(item.city == "linyi" and item.title.startswith("临沂市") for item in incidents.items)
    assert all("预警" in item.headline for item in warnings.items)
    assert isinstance(resources, ResourcePage)
    assert all(item.lat is not None and abs(item.lat - 35.065) <= 0.2 for item in resources.items)


def test_the_same_seed_gives_the_same_data() -> None:
    one = PartnerSimulator("heze", token=TOKEN, seed=3, initial=(5, 5, 5))
    two = PartnerSimulator("heze", token=TOKEN, seed=3, initial=(5, 5, 5))
    # Times follow the clock; everything else follows the seed.
    times = {"occurred_at", "updated_at", "issued_at", "expires_at"}
    for kind in FeedKind:
        first = [r.model_dump(exclude=times) for r in one.records(kind)]
        assert first == [r.model_dump(exclude=times) for r in two.records(kind.value)]


def test_the_control_endpoint_flips_switches_from_another_process(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators()
    control = requests.post(
        f"{sim.url}/_sim/mode",
        json={"fail_count": 1, "change": 4, "change_kind": "warnings"},
        headers=_auth(),
        timeout=2,
    )
    assert control.status_code == 200
    assert control.json()["fail_count"] == 1
    assert requests.get(f"{sim.url}/feeds/incidents", headers=_auth(), timeout=2).status_code == 500
    assert requests.get(f"{sim.url}/feeds/incidents", headers=_auth(), timeout=2).status_code == 200
    state = requests.get(f"{sim.url}/_sim/state", headers=_auth(), timeout=2).json()
    assert state["stats"]["failures_injected"] == 1
    assert state["stats"]["records"] == {"incidents": 50, "warnings": 10, "resources": 40}
    refused = requests.post(f"{sim.url}/_sim/mode", json={"explode": True}, headers=_auth(), timeout=2)
    assert refused.status_code == 422
    assert requests.get(f"{sim.url}/_sim/state", timeout=2).status_code == 401


def test_away_through_the_control_endpoint_comes_back_on_the_same_port(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators()
    answer = requests.post(f"{sim.url}/_sim/mode", data=json.dumps({"away": 0.3}), headers=_auth(), timeout=2)
    assert answer.status_code == 200
    wait_until(lambda: sim.is_away, what="the platform went away")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sim.url}/feeds/incidents", headers=_auth(), timeout=2)
    wait_until(lambda: not sim.is_away, what="the platform came back")
    assert requests.get(f"{sim.url}/feeds/incidents", headers=_auth(), timeout=2).status_code == 200


def test_drift_changes_records_over_time(simulators: Callable[..., PartnerSimulator]) -> None:
    sim = simulators(drift_interval=0.02, drift_records=2)
    with client_for(sim.url) as client:
        cursors = {kind: [*client.iter_changes(kind, None)][-1].next_cursor for kind in FeedKind}

        def changed() -> int:
            return sum(
                len(page.items) for kind in FeedKind for page in client.iter_changes(kind, cursors[kind])
            )

        wait_until(lambda: changed() >= 4, what="drift changed records")


def test_a_cursor_round_trips_and_garbage_is_refused() -> None:
    key = (datetime(2025, 7, 12, 1, 2, 3, 456789, tzinfo=UTC), "LINYI-INC-000001")
    assert decode_cursor(encode_cursor(key)) == key
    for garbage in ("%%%", "bm90IGEgY3Vyc29y", ""):
        with pytest.raises(ValueError, match="not a cursor"):
            decode_cursor(garbage)


def test_run_partner_serves_until_stopped() -> None:
    stop = threading.Event()
    port_probe = PartnerSimulator("jining", token=TOKEN, initial=(0, 0, 0)).start()
    port = port_probe.port
    port_probe.stop()
    thread = threading.Thread(
        target=run_partner, args=("jining", port, TOKEN), kwargs={"stop": stop, "initial": (3, 0, 0)}
    )
    thread.start()
    try:
        with PartnerClient(f"http://127.0.0.1:{port}", TOKEN, retries=5, backoff=0.05) as client:
            assert len(client.fetch_page(FeedKind.INCIDENTS, None).items) == 3
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
