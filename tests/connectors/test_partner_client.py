"""The partner client against the simulator and against stub servers that misbehave, over real sockets."""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from connectors.partner_client import (
    DEAD_LETTER_BYTES,
    PartnerClient,
    PartnerContractError,
    PartnerPermanentError,
    PartnerTransientError,
    parse_ack,
    parse_page,
    parse_retry_after,
)
from connectors.sims.partner import PartnerSimulator
from contracts.common import IncidentCategory, WarningColour
from contracts.errors import ContractError
from contracts.partner import (
    BulletinDelivery,
    BulletinKind,
    FeedKind,
    IncidentPage,
    Receipt,
    Scope,
    VerificationRequestDelivery,
)

TOKEN = "linyi-secret"
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "partner"

Reply = tuple[int, dict[str, str], bytes]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that stops reading a body over its limit resets the connection; that is the point.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class StubServer:
    """A plain HTTP server on loopback that answers with `respond` and records every request."""

    def __init__(self, respond: Callable[[str, str, dict[str, str], bytes], Reply]) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = dict(self.headers.items())
                stub.requests.append((self.command, self.path, headers, body))
                status, extra, payload = respond(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(payload)), **extra}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)


@pytest.fixture
def stubs() -> Iterator[Callable[[Callable[[str, str, dict[str, str], bytes], Reply]], StubServer]]:
    """Return a maker of stub servers, all closed at teardown."""
    made: list[StubServer] = []

    def make(respond: Callable[[str, str, dict[str, str], bytes], Reply]) -> StubServer:
        made.append(StubServer(respond))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def simulators() -> Iterator[Callable[..., PartnerSimulator]]:
    """Return a maker of started simulators, all stopped at teardown."""
    made: list[PartnerSimulator] = []

    def make(city: str = "linyi", **options: Any) -> PartnerSimulator:
        settings: dict[str, Any] = {"token": TOKEN, "seed": 7, "name_zh": "临沂市"} | options
        made.append(PartnerSimulator(city, **settings).start())
        return made[-1]

    yield make
    for simulator in made:
        simulator.stop()


class Sleeps(list[float]):
    """A stand-in for time.sleep that records the delays instead of waiting them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(url: str, **options: Any) -> PartnerClient:
    settings: dict[str, Any] = {"timeout": (1.0, 2.0), "retries": 2, "backoff": 0.01} | options
    return PartnerClient(url, settings.pop("token", TOKEN), **settings)


def bulletin(**overrides: Any) -> BulletinDelivery:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "id": uuid4(),
        "kind": BulletinKind.WARNING,
        "issuing_city": "xuzhou",
        "colour": WarningColour.ORANGE,
        "category": IncidentCategory.NATURAL,
        "area": "徐州市邳州市",
        "title": "沂河洪峰过境预警",
        "text": "沂河洪峰预计今晚过境邳州，请下游城市做好防范。",
        "scope": Scope.RESTRICTED,
        "addressed_cities": ("linyi", "suqian"),
        "receipt_deadline": now + timedelta(hours=2),
        "issued_at": now,
    }
    return BulletinDelivery(**(fields | overrides))


# Feeds -----------------------------------------------------------------------------------------


def test_pagination_returns_every_record_exactly_once(simulators: Callable[..., PartnerSimulator]) -> None:
    sim = simulators(initial=(1050, 0, 0))
    with client_for(sim.url) as client:
        pages = list(client.iter_changes(FeedKind.INCIDENTS, None, limit=200))
        ids = [item.id for page in pages for item in page.items]
        assert [len(page.items) for page in pages] == [200, 200, 200, 200, 200, 50]
        assert [page.has_more for page in pages] == [True] * 5 + [False]
        assert sorted(ids) == sorted(record.id for record in sim.records(FeedKind.INCIDENTS))
        assert len(set(ids)) == 1050
        # Caught up: the saved cursor gives nothing new and comes back unchanged.
        again = client.fetch_page(FeedKind.INCIDENTS, pages[-1].next_cursor, 200)
        assert again.items == ()
        assert again.next_cursor == pages[-1].next_cursor
        assert not again.has_more


def test_an_empty_feed_still_hands_out_a_cursor(simulators: Callable[..., PartnerSimulator]) -> None:
    sim = simulators(initial=(0, 0, 0))
    with client_for(sim.url) as client:
        page = client.fetch_page(FeedKind.WARNINGS, None)
        assert (page.items, page.has_more) == ((), False)
        sim.add(3, FeedKind.WARNINGS)
        assert len(client.fetch_page(FeedKind.WARNINGS, page.next_cursor).items) == 3


def test_a_fetch_from_the_saved_cursor_returns_exactly_the_changes(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators(initial=(300, 100, 200))
    with client_for(sim.url) as client:
        cursors = {kind: [*client.iter_changes(kind, None, 200)][-1].next_cursor for kind in FeedKind}
        changed = sim.change(10)
        seen = [
            (kind, item.id)
            for kind in FeedKind
            for page in client.iter_changes(kind, cursors[kind], 200)
            for item in page.items
        ]
        assert sorted(seen) == sorted(changed)
        assert len(seen) == 10


def test_incremental_cost_follows_the_changes_at_ten_thousand_records(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators(initial=(10_000, 0, 0))
    with client_for(sim.url) as client:
        cursor = sim_cursor = [*client.iter_changes(FeedKind.INCIDENTS, None, 500)][-1].next_cursor
        changed = {record_id for _, record_id in sim.change(100, FeedKind.INCIDENTS)}
        pages = list(client.iter_changes(FeedKind.INCIDENTS, cursor, 500))
        assert len(pages) == 1
        assert {item.id for item in pages[0].items} == changed
        assert pages[0].next_cursor != sim_cursor


def test_a_bad_cursor_is_a_permanent_error_and_not_retried(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators()
    sleeps = Sleeps()
    with client_for(sim.url, sleep=sleeps) as client, pytest.raises(PartnerPermanentError) as caught:
        client.fetch_page(FeedKind.INCIDENTS, "not-a-cursor!", 10)
    assert (caught.value.status, caught.value.code) == (400, "bad_cursor")
    assert sleeps == []


def test_a_wrong_token_is_a_permanent_401(simulators: Callable[..., PartnerSimulator]) -> None:
    sim = simulators()
    sleeps = Sleeps()
    with (
        client_for(sim.url, token="wrong", sleep=sleeps) as client,
        pytest.raises(PartnerPermanentError) as caught,
    ):
        client.fetch_page(FeedKind.INCIDENTS, None)
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    assert "wrong" not in str(caught.value)
    assert sleeps == []


def test_the_limit_is_checked_before_any_call() -> None:
    with PartnerClient("http://127.0.0.1:9", TOKEN) as client, pytest.raises(ValueError, match="limit"):
        client.fetch_page(FeedKind.INCIDENTS, None, 501)


# Transient failures ----------------------------------------------------------------------------


def test_a_slow_platform_is_a_transient_error_after_the_retries(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators()
    sim.slow(1.0)
    started = time.monotonic()
    with (
        client_for(sim.url, timeout=(1.0, 0.2), retries=2) as client,
        pytest.raises(PartnerTransientError) as caught,
    ):
        client.fetch_page(FeedKind.INCIDENTS, None)
    assert caught.value.attempts == 3
    assert caught.value.status is None
    assert sim.stats.requests == 3
    assert time.monotonic() - started < 3.0


def test_two_500s_then_success_is_retried_with_growing_back_off(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators()
    sim.fail(2)
    sleeps = Sleeps()
    with client_for(sim.url, retries=3, backoff=0.5, sleep=sleeps) as client:
        page = client.fetch_page(FeedKind.INCIDENTS, None, 5)
    assert len(page.items) == 5
    assert sleeps == [0.5, 1.0]
    assert sim.stats.failures_injected == 2


def test_500s_beyond_the_retries_give_a_transient_error_with_the_status(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators()
    sim.fail(10)
    with client_for(sim.url, retries=1) as client, pytest.raises(PartnerTransientError) as caught:
        client.fetch_page(FeedKind.INCIDENTS, None)
    assert (caught.value.attempts, caught.value.status) == (2, 500)


def test_a_platform_away_then_back(simulators: Callable[..., PartnerSimulator]) -> None:
    sim = simulators()
    with client_for(sim.url, retries=1) as client:
        client.fetch_page(FeedKind.INCIDENTS, None, 1)  # a pooled keep-alive connection exists now
        sim.away()
        with pytest.raises(PartnerTransientError, match="ConnectionError"):
            client.fetch_page(FeedKind.INCIDENTS, None, 1)
        sim.back()
        assert len(client.fetch_page(FeedKind.INCIDENTS, None, 1).items) == 1


def test_retries_outlast_a_short_absence(simulators: Callable[..., PartnerSimulator]) -> None:
    sim = simulators()
    port = sim.port
    sim.away(0.3)
    with client_for(sim.url, retries=6, backoff=0.1) as client:
        assert client.deliver_bulletin(bulletin()).accepted
    assert sim.port == port
    assert sim.stats.bulletins == 1


def test_retry_after_is_honoured_and_capped(stubs: Callable[..., StubServer]) -> None:
    answers = iter(
        [
            (503, {"Retry-After": "2"}, b"{}"),
            (429, {"Retry-After": "1000"}, b"{}"),
            (200, {}, b'{"items":[],"next_cursor":"c","has_more":false}'),
        ]
    )
    stub = stubs(lambda *_: next(answers))
    sleeps = Sleeps()
    with client_for(stub.url, retries=3, sleep=sleeps, max_retry_after=30.0) as client:
        assert client.fetch_page(FeedKind.WARNINGS, None).next_cursor == "c"
    assert sleeps == [2.0, 30.0]


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 7, 12, 8, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Sat, 12 Jul 2025 08:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sat, 12 Jul 2025 07:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_other_4xx_and_redirects_are_permanent(stubs: Callable[..., StubServer]) -> None:
    answers = iter(
        [
            (404, {}, b'{"error":{"code":"not_found","message":"no such feed"}}'),
            (302, {"Location": "http://127.0.0.1:9/elsewhere"}, b""),
            (418, {}, b"<html>teapot</html>"),
        ]
    )
    stub = stubs(lambda *_: next(answers))
    with client_for(stub.url) as client:
        for status, code in ((404, "not_found"), (302, None), (418, None)):
            with pytest.raises(PartnerPermanentError) as caught:
                client.fetch_page(FeedKind.RESOURCES, None)
            assert (caught.value.status, caught.value.code) == (status, code)
    assert len(stub.requests) == 3
    assert stub.requests[0][2]["Authorization"] == f"Bearer {TOKEN}"


# Payloads that break the contract --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\x00\xff garbage \x8f", "malformed JSON"),
        (b'{"items": [{"id": 5}], "next_cursor": "c", "has_more": "yes"}', "items[0].id"),
        (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><lolz>&lol;</lolz>', "malformed JSON"),
        (b"", "empty body"),
        (b'{"items": [], "next_cursor": "c", "has_more": true}', "has_more is true on an empty page"),
    ],
    ids=["garbage", "wrong-types", "xml", "empty", "more-but-empty"],
)
def test_a_page_that_breaks_the_contract_is_a_contract_error(
    stubs: Callable[..., StubServer], body: bytes, words: str
) -> None:
    stub = stubs(lambda *_: (200, {"Content-Type": "application/json"}, body))
    sleeps = Sleeps()
    with client_for(stub.url, sleep=sleeps) as client, pytest.raises(PartnerContractError) as caught:
        client.fetch_page(FeedKind.INCIDENTS, "c0")
    assert words in str(caught.value)
    assert isinstance(caught.value, ContractError)
    assert caught.value.raw == body
    assert caught.value.url == f"{stub.url}/feeds/incidents"
    assert caught.value.problems
    assert sleeps == [], "a broken payload is not retried"


def test_a_huge_page_is_cut_off_and_kept_bounded(stubs: Callable[..., StubServer]) -> None:
    huge = b'{"items":[' + b" " * 3_000_000 + b"]}"
    stub = stubs(lambda *_: (200, {}, huge))
    with (
        client_for(stub.url, max_page_bytes=1_000_000) as client,
        pytest.raises(PartnerContractError) as caught,
    ):
        client.fetch_page(FeedKind.INCIDENTS, None)
    assert "larger than the limit of 1000000 bytes" in str(caught.value)
    assert len(caught.value.raw) == DEAD_LETTER_BYTES


def test_a_gzip_bomb_is_cut_off_while_decompressing(stubs: Callable[..., StubServer]) -> None:
    bomb = gzip.compress(b'{"items":[' + b" " * 50_000_000, compresslevel=9)
    assert len(bomb) < 100_000
    stub = stubs(lambda *_: (200, {"Content-Encoding": "gzip"}, bomb))
    with (
        client_for(stub.url, max_page_bytes=1_000_000) as client,
        pytest.raises(PartnerContractError) as caught,
    ):
        client.fetch_page(FeedKind.INCIDENTS, None)
    assert "larger than the limit" in str(caught.value)
    assert len(caught.value.raw) <= DEAD_LETTER_BYTES


def test_a_feed_that_says_more_without_moving_on_is_refused(stubs: Callable[..., StubServer]) -> None:
    sample = json.loads((SAMPLES / "partner-incident-page.json").read_text("utf-8"))
    stuck = json.dumps(sample | {"next_cursor": "same"}).encode()
    stub = stubs(lambda *_: (200, {}, stuck))
    with (
        client_for(stub.url) as client,
        pytest.raises(PartnerContractError, match="same next_cursor"),
    ):
        list(client.iter_changes(FeedKind.INCIDENTS, "same"))


def test_an_ack_with_another_bulletins_receipt_is_refused(stubs: Callable[..., StubServer]) -> None:
    other = Receipt(
        bulletin_id=uuid4(), city="linyi", received_at=datetime.now(UTC), acknowledged_by="值班员"
    )
    ack = json.dumps({"accepted": True, "platform_ref": "LY-1", "receipt": other.model_dump(mode="json")})
    stub = stubs(lambda *_: (200, {}, ack.encode()))
    with (
        client_for(stub.url) as client,
        pytest.raises(PartnerContractError, match="the receipt is for bulletin"),
    ):
        client.deliver_bulletin(bulletin())


def test_parsers_are_pure_functions_that_keep_the_raw_bytes() -> None:
    page = parse_page(FeedKind.INCIDENTS, b'{"items":[],"next_cursor":"x","has_more":false}')
    assert isinstance(page, IncidentPage)
    with pytest.raises(PartnerContractError) as caught:
        parse_ack(b'{"accepted": "yes"}', url="http://p/bulletins")
    assert caught.value.url == "http://p/bulletins"
    assert caught.value.raw == b'{"accepted": "yes"}'
    assert "accepted: Input should be a valid boolean" in str(caught.value)


# Deliveries ------------------------------------------------------------------------------------


def test_a_simulated_platform_answers_with_delivery_only_by_default(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators()
    with client_for(sim.url) as client:
        ack = client.deliver_bulletin(bulletin())
    assert ack.accepted and ack.platform_ref
    assert ack.receipt is None  # no one on duty signed: the platform only took it


def test_a_bulletin_is_acknowledged_with_an_immediate_receipt(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators(receipt_mode="immediate")
    sent = bulletin()
    with client_for(sim.url) as client:
        ack = client.deliver_bulletin(sent)
    assert ack.accepted
    assert ack.receipt is not None
    assert (ack.receipt.bulletin_id, ack.receipt.city) == (sent.id, "linyi")
    assert ack.receipt.acknowledged_by == "临沂市应急管理局值班员"
    assert sim.bulletins() == [sent]


def test_a_repeated_delivery_gets_the_same_ack_and_counts_as_a_duplicate(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators()
    sent = bulletin()
    with client_for(sim.url) as client:
        first = client.deliver_bulletin(sent)
        second = client.deliver_bulletin(sent)
        assert second == first
        assert (sim.stats.bulletins, sim.stats.bulletin_duplicates) == (1, 1)
        with pytest.raises(PartnerPermanentError) as caught:
            client.deliver_bulletin(sent.model_copy(update={"title": "另一条通报"}))
    assert (caught.value.status, caught.value.code) == (409, "id_conflict")


def test_a_bulletin_for_other_cities_is_refused_with_a_reason(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators()
    with client_for(sim.url) as client:
        ack = client.deliver_bulletin(bulletin(addressed_cities=("suqian",)))
    assert not ack.accepted
    assert ack.receipt is None
    assert ack.reason == "本通报未发送至临沂市"


def test_verification_requests_and_receipts_are_taken_once(
    simulators: Callable[..., PartnerSimulator],
) -> None:
    sim = simulators()
    now = datetime.now(UTC)
    request = VerificationRequestDelivery(
        id=uuid4(),
        from_city="xuzhou",
        to_city="linyi",
        incident_ref="LY-2025-07-0032",
        question="请核实槽罐车是否泄漏。",
        deadline=now + timedelta(hours=1),
        issued_at=now,
    )
    receipt = Receipt(bulletin_id=uuid4(), city="suqian", received_at=now, acknowledged_by="宿迁市值班员")
    with client_for(sim.url) as client:
        ack = client.deliver_verification_request(request)
        assert ack.accepted and ack.receipt is None
        assert client.deliver_verification_request(request) == ack
        assert client.send_receipt(receipt).accepted
        client.send_receipt(receipt)
    assert sim.verification_requests() == [request]
    assert sim.receipts() == [receipt]
    assert (sim.stats.verification_duplicates, sim.stats.receipt_duplicates) == (1, 1)


def test_the_client_never_shows_its_token() -> None:
    client = PartnerClient("http://127.0.0.1:9", "very-secret")
    assert "very-secret" not in repr(client)
    client.close()
