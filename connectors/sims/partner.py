"""A city's emergency platform, simulated: a real HTTP server speaking `contracts.partner`.

`PartnerSimulator` generates its city's incidents, warnings and resource inventory in Chinese
from a seed, serves them as the contract's incremental feeds, and takes bulletins, verification
requests and receipts. It runs on the standard library's `ThreadingHTTPServer` (one thread per
connection, HTTP/1.1 keep-alive), so it needs nothing the connectors layer may not import.

Feeds: each feed keeps its records' (updated_at, id) keys in a sorted list beside each record's
encoded JSON, so a page is a bisect and a slice and costs the same at 10,000 records as at 10.
Every change takes a strictly later `updated_at` from a clock that never goes back, and the
cursor is the key of the last record given (base64url), so a fetch from a saved cursor returns
exactly the records changed since. `change(n)` changes records now; `drift_interval` makes a
thread do it every so often; `add(n)` creates new ones.

Deliveries are stored by id. A repeated id with the same content gets the first ack again and is
counted as a duplicate; a repeated id with other content is a 409. A bulletin not addressed to
this city is acknowledged with `accepted: false`. Receipts (回执) follow `receipt_mode`:
"never" (the default, and the demo's) answers with delivery only, as a real platform does until a
person on duty signs, so the hub shows the city as not signed and late cities are reminded;
"immediate" puts a receipt in the ack (which the hub records as delivery only: a platform's answer
is not a person's signature); "delayed" posts one to the hub `receipt_delay` seconds later
(`HUB_RECEIPT_PATH`, with `hub_token`, retried with back-off while the hub is away), as a platform
passing on a signature made there. With `answer_delay`, verification requests are answered the
same way at `HUB_ANSWER_PATH`.

Switches, for tests in the same process or over `POST /_sim/mode` from another one:
`slow(seconds)` delays every answer, `fail(count, rate=...)` answers 500 to the next `count`
requests or to a share of them, `away(seconds)` closes the listening socket and every open
connection (clients see "connection refused") and comes back on the same port after `seconds`,
or at `back()`. The control endpoints (`POST /_sim/mode`, `GET /_sim/state`) need the same token
and ignore the switches; while away they are gone too, so over HTTP `away` needs a duration.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import random
import socket
import socketserver
import sys
import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Annotated, Any, Literal, Self
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.common import IncidentCategory, IncidentLevel, IncidentStatus, WarningColour
from contracts.errors import ContractError
from contracts.partner import (
    DEFAULT_LIMIT,
    HUB_ANSWER_PATH,
    HUB_RECEIPT_PATH,
    MAX_LIMIT,
    MAX_MESSAGE_BYTES,
    BulletinDelivery,
    DeliveryAck,
    FeedItem,
    FeedKind,
    InvitationMethod,
    MeetingInvitationDelivery,
    PartnerIncident,
    PartnerWarning,
    Receipt,
    ResourceItem,
    ResourceKind,
    VerificationAnswer,
    VerificationRequestDelivery,
    WarningStatus,
    decode_bulletin,
    decode_meeting_invitation,
    decode_receipt,
    decode_verification_request,
    encode,
    error_body,
)

logger = logging.getLogger(__name__)

ReceiptMode = Literal["immediate", "delayed", "never"]
Key = tuple[datetime, str]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How long the initial records' history reaches back; their updated_at is spread evenly over it.
_HISTORY = timedelta(days=30)
_POLL = 0.05
_HUB_TIMEOUT = (3.05, 10.0)
_HUB_ATTEMPTS = 6

_TOWNS = (
    "城关镇",
    "新集镇",
    "马坡镇",
    "王庄镇",
    "李集镇",
    "张桥镇",
    "高新区",
    "经济开发区",
    "城南街道",
    "城北街道",
    "湖滨街道",
    "东关街道",
)
_INCIDENTS: dict[IncidentCategory, tuple[str, ...]] = {
    IncidentCategory.NATURAL: ("暴雨内涝", "河道水位超警戒", "山体滑坡", "冰雹灾害", "森林火情"),
    IncidentCategory.ACCIDENT: (
        "危化品运输车辆侧翻",
        "厂房火灾",
        "燃气管道泄漏",
        "建筑工地坍塌",
        "道路交通事故",
    ),
    IncidentCategory.PUBLIC_HEALTH: ("疑似食物中毒事件", "学校聚集性发热病例", "饮用水水质异常"),
    IncidentCategory.SOCIAL_SECURITY: ("人员聚集事件", "大型活动踩踏隐患"),
}
_PROGRESS = (
    "现场救援力量已到位，正在全力处置",
    "伤亡情况正在进一步核实",
    "周边群众已安全转移",
    "险情已得到有效控制",
    "相关部门已启动应急响应",
)
_HAZARDS = ("暴雨", "大风", "高温", "寒潮", "大雾", "雷电", "冰雹", "道路结冰")
_RESOURCES: dict[ResourceKind, tuple[tuple[str, str], ...]] = {
    ResourceKind.RESCUE_TEAM: (
        ("消防救援支队水域救援队", "人"),
        ("矿山救护队", "人"),
        ("危化品处置队", "人"),
    ),
    ResourceKind.SUPPLIES: (("防汛沙袋", "万条"), ("救灾帐篷", "顶"), ("棉被", "床"), ("融雪剂", "吨")),
    ResourceKind.EQUIPMENT: (
        ("冲锋舟", "艘"),
        ("排涝泵车", "台"),
        ("应急发电机", "台"),
        ("生命探测仪", "台"),
    ),
    ResourceKind.SHELTER: (("应急避难场所", "人"),),
    ResourceKind.EXPERT: (("防汛抢险专家", "人"), ("危化品处置专家", "人"), ("医疗救治专家", "人")),
    ResourceKind.VEHICLE: (("应急通信车", "辆"), ("救护车", "辆"), ("消防车", "辆")),
}
_NEXT_STATUS = {
    IncidentStatus.REPORTED: IncidentStatus.RESPONDING,
    IncidentStatus.RESPONDING: IncidentStatus.CLOSED,
    IncidentStatus.CLOSED: IncidentStatus.CLOSED,
}


def encode_cursor(key: Key) -> str:
    """Return the opaque cursor after the record with `key`."""
    micros = (key[0] - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{micros}.{key[1]}".encode()).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> Key:
    """Read a cursor made by `encode_cursor`, or raise ValueError."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        micros, _, record_id = text.partition(".")
        return _EPOCH + timedelta(microseconds=int(micros)), record_id
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as error:
        raise ValueError(f"not a cursor of this platform: {cursor!r}") from error


_START = encode_cursor((_EPOCH, ""))


class _Feed:
    """One feed's records, kept in (updated_at, id) order with their JSON ready to send."""

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self.records: dict[str, FeedItem] = {}
        self.encoded: dict[str, bytes] = {}

    def put(self, item: FeedItem) -> None:
        """Insert or replace a record; its key moves to its new updated_at."""
        old = self.records.get(item.id)
        if old is not None:
            del self.keys[bisect_left(self.keys, (old.updated_at, old.id))]
        insort(self.keys, (item.updated_at, item.id))
        self.records[item.id] = item
        self.encoded[item.id] = encode(item)

    def drop(self, record_id: str) -> None:
        """Remove a record from the feed altogether."""
        old = self.records.pop(record_id)
        del self.keys[bisect_left(self.keys, (old.updated_at, old.id))]
        del self.encoded[record_id]

    def page(self, after: Key, cursor: str, limit: int) -> bytes:
        """Return the JSON of the page of at most `limit` records after `after`."""
        start = bisect_right(self.keys, after)
        keys = self.keys[start : start + limit]
        has_more = start + len(keys) < len(self.keys)
        next_cursor = encode_cursor(keys[-1]) if keys else cursor
        items = b",".join(self.encoded[record_id] for _, record_id in keys)
        return b"".join(
            (
                b'{"schema_version":1,"items":[',
                items,
                b'],"next_cursor":"',
                next_cursor.encode("ascii"),
                b'","has_more":',
                b"true" if has_more else b"false",
                b"}",
            )
        )


@dataclass
class SimStats:
    """What the simulator has served and received, for tests and the benchmark."""

    requests: int = 0
    failures_injected: int = 0
    bulletins: int = 0
    bulletin_duplicates: int = 0
    bulletin_cancellations: int = 0
    verification_requests: int = 0
    verification_duplicates: int = 0
    receipts: int = 0
    receipt_duplicates: int = 0
    receipts_posted: int = 0
    answers_posted: int = 0
    meeting_invitations: int = 0
    meeting_invitation_duplicates: int = 0
    invitation_answers_posted: int = 0
    records: dict[str, int] = field(default_factory=dict)


class SimControl(BaseModel):
    """The body of `POST /_sim/mode`: each field given changes that switch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slow: Annotated[float, Field(ge=0, le=600)] | None = None
    fail_count: Annotated[int, Field(ge=0, le=100_000)] | None = None
    fail_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    away: Annotated[float, Field(gt=0, le=3600)] | None = None
    receipt_mode: ReceiptMode | None = None
    change: Annotated[int, Field(ge=0, le=100_000)] | None = None
    change_kind: FeedKind | None = None


class _HttpError(Exception):
    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.simulator._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.simulator._handle(self, "POST")

    body_read = False

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: PartnerSimulator) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host's name up (getfqdn); a simulator needs no name,
        # and a slow resolver would hold up every start and every return from `away`.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # A client that gave up waiting, or a connection cut by `away`, is part of the simulation.
        if isinstance(error, OSError):
            logger.debug("connection from %s ended: %s", client_address, error)
            return
        logger.exception("simulated platform failed on a request from %s", client_address)

    def drop_connections(self) -> None:
        """Cut every open connection, as a crashed or unplugged platform would."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("connection already closed")


class PartnerSimulator:
    """A city platform with generated data, switches for trouble, and a record of what it got."""

    def __init__(
        self,
        city: str,
        *,
        token: str,
        port: int = 0,
        host: str = "127.0.0.1",
        hub_url: str | None = None,
        hub_token: str | None = None,
        seed: int | None = None,
        initial: tuple[int, int, int] = (50, 10, 40),
        receipt_mode: ReceiptMode = "never",
        receipt_delay: float = 1.0,
        answer_delay: float | None = None,
        drift_interval: float | None = None,
        drift_records: int = 3,
        name_zh: str | None = None,
        centre: tuple[float, float] | None = None,
    ) -> None:
        """Generate the city's data; nothing listens until `start()`."""
        if not token:
            raise ValueError("the simulator needs a bearer token")
        if (receipt_mode == "delayed" or answer_delay is not None) and not (hub_url and hub_token):
            raise ValueError("delayed receipts and answers need hub_url and hub_token")
        self.city = city
        self.host = host
        self.port = port
        self.hub_url = hub_url.rstrip("/") if hub_url else None
        self.receipt_mode: ReceiptMode = receipt_mode
        self.receipt_delay = receipt_delay
        self.answer_delay = answer_delay
        self.drift_interval = drift_interval
        self.drift_records = drift_records
        self.name = name_zh or city
        self.centre = centre
        self._token = token.encode("utf-8")
        self._hub_token = hub_token
        self._code = city.upper()
        self._random = random.Random(seed)  # noqa: S311 - sample data, not secrets
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._server_thread: threading.Thread | None = None
        self._background: list[threading.Thread] = []
        self._timers: set[threading.Timer] = set()
        self._away_timer: threading.Timer | None = None
        self._last_time = _EPOCH
        self._serial = 0
        self._slow = 0.0
        self._fail_count = 0
        self._fail_rate = 0.0
        self.stats = SimStats()
        self._feeds = {kind: _Feed() for kind in FeedKind}
        self._bulletins: dict[UUID, tuple[BulletinDelivery, DeliveryAck]] = {}
        self._requests: dict[UUID, tuple[VerificationRequestDelivery, DeliveryAck]] = {}
        self._receipts: dict[tuple[UUID, str], tuple[Receipt, DeliveryAck]] = {}
        self._invitations: dict[tuple[UUID, int], tuple[MeetingInvitationDelivery, DeliveryAck]] = {}
        # When each invitation (id, sequence) arrived, for the benchmark.
        self.invitation_arrivals: dict[tuple[UUID, int], datetime] = {}
        self.receipts_posted: list[Receipt] = []
        self.answers_posted: list[VerificationAnswer] = []
        self._generate(initial)

    # Life -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the base URL the platform serves under."""
        return f"http://{self.host}:{self.port}"

    @property
    def is_away(self) -> bool:
        """Return whether the platform is away (not listening) right now."""
        return self._server is None

    def start(self) -> Self:
        """Listen and serve; start drifting if asked to."""
        self._stopping.clear()
        self._listen()
        if self.drift_interval:
            thread = threading.Thread(target=self._drift, name=f"sim-partner-{self.city}-drift", daemon=True)
            thread.start()
            self._background.append(thread)
        logger.info("partner platform %s listening on %s", self.city, self.url)
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections, cancel pending receipts."""
        self._stopping.set()
        with self._lock:
            timers = [*self._timers, *([self._away_timer] if self._away_timer else [])]
            self._timers.clear()
            self._away_timer = None
        for timer in timers:
            timer.cancel()
        self._close()
        for thread in self._background:
            thread.join(timeout=2.0)
        self._background.clear()

    def __enter__(self) -> Self:
        """Start the simulator for a `with` block."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the simulator."""
        self.stop()

    def _listen(self) -> None:
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL},
            name=f"sim-partner-{self.city}",
            daemon=True,
        )
        thread.start()
        self._server, self._server_thread = server, thread

    def _close(self) -> None:
        with self._lock:
            server, thread = self._server, self._server_thread
            self._server = self._server_thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        thread.join(timeout=2.0)

    # Switches ---------------------------------------------------------------------------------

    def slow(self, seconds: float) -> None:
        """Delay every answer by `seconds` (0: answer at once again)."""
        with self._lock:
            self._slow = max(0.0, seconds)

    def fail(self, count: int = 0, *, rate: float = 0.0) -> None:
        """Answer 500 to the next `count` requests, and to a share `rate` of the others."""
        if count < 0 or not 0 <= rate <= 1:
            raise ValueError("count must be 0 or more and rate between 0 and 1")
        with self._lock:
            self._fail_count = count
            self._fail_rate = rate

    def away(self, seconds: float | None = None) -> None:
        """Stop listening and cut connections; come back after `seconds`, or at `back()`."""
        with self._lock:
            if self._away_timer is not None:
                self._away_timer.cancel()
                self._away_timer = None
            if seconds is not None:
                self._away_timer = threading.Timer(seconds, self.back)
                self._away_timer.daemon = True
        logger.info("partner platform %s goes away for %s s", self.city, seconds)
        self._close()
        if self._away_timer is not None:
            self._away_timer.start()

    def back(self) -> None:
        """Listen again on the same port after `away()`."""
        with self._lock:
            if self._away_timer is not None:
                self._away_timer.cancel()
                self._away_timer = None
            if self._server is not None or self._stopping.is_set():
                return
            self._listen()
        logger.info("partner platform %s is back on %s", self.city, self.url)

    def set_receipt_mode(self, mode: ReceiptMode) -> None:
        """Change how later bulletins are acknowledged."""
        if mode == "delayed" and not self.hub_url:
            raise ValueError("delayed receipts need hub_url and hub_token")
        with self._lock:
            self.receipt_mode = mode

    # Data -------------------------------------------------------------------------------------

    def change(self, n: int, kind: FeedKind | str | None = None) -> list[tuple[FeedKind, str]]:
        """Change `n` distinct records (of `kind`, or of any feed) now; return which."""
        with self._lock:
            kinds = [FeedKind(kind)] if kind is not None else list(FeedKind)
            population = [(k, record_id) for k in kinds for record_id in self._feeds[k].records]
            chosen = self._random.sample(population, min(n, len(population)))
            for feed_kind, record_id in chosen:
                self._feeds[feed_kind].put(self._changed(self._feeds[feed_kind].records[record_id]))
        logger.debug("partner platform %s changed %d records", self.city, len(chosen))
        return chosen

    def add(self, n: int, kind: FeedKind | str) -> list[str]:
        """Create `n` new records in feed `kind` now; return their ids."""
        feed_kind = FeedKind(kind)
        with self._lock:
            made = [self._make(feed_kind, self._now()) for _ in range(n)]
            for item in made:
                self._feeds[feed_kind].put(item)
        return [item.id for item in made]

    def withdraw(self, record_ids: list[str]) -> None:
        """Report resources withdrawn, as the contract says: the same records with quantity 0, now."""
        with self._lock:
            feed = self._feeds[FeedKind.RESOURCES]
            for record_id in record_ids:
                item = feed.records[record_id]
                feed.put(item.model_copy(update={"quantity": Decimal(0), "updated_at": self._now()}))

    def forget(self, kind: FeedKind | str, record_ids: list[str]) -> None:
        """Drop records from a feed without a trace, as a platform rebuilt from scratch might.

        The contract forbids it (a record is never deleted), so a consumer that follows its
        cursor never notices; only a full sync from the start shows what is gone.
        """
        with self._lock:
            for record_id in record_ids:
                self._feeds[FeedKind(kind)].drop(record_id)

    def put(self, item: FeedItem) -> None:
        """Publish a record as given (a new one, or a new version of one), for tests."""
        kind = {PartnerIncident: FeedKind.INCIDENTS, PartnerWarning: FeedKind.WARNINGS}.get(
            type(item), FeedKind.RESOURCES
        )
        with self._lock:
            self._feeds[kind].put(item.model_copy(update={"updated_at": self._now()}))

    def records(self, kind: FeedKind | str) -> list[FeedItem]:
        """Return the current records of a feed in feed order."""
        with self._lock:
            feed = self._feeds[FeedKind(kind)]
            return [feed.records[record_id] for _, record_id in feed.keys]

    def bulletins(self) -> list[BulletinDelivery]:
        """Return the distinct bulletins received, in order of arrival."""
        with self._lock:
            return [bulletin for bulletin, _ in self._bulletins.values()]

    def verification_requests(self) -> list[VerificationRequestDelivery]:
        """Return the distinct verification requests received, in order of arrival."""
        with self._lock:
            return [request for request, _ in self._requests.values()]

    def meeting_invitations(self) -> list[MeetingInvitationDelivery]:
        """Return the distinct meeting invitations (each update and cancellation too), in order."""
        with self._lock:
            return [invitation for invitation, _ in self._invitations.values()]

    def receipts(self) -> list[Receipt]:
        """Return the distinct receipts of other cities received, in order of arrival."""
        with self._lock:
            return [receipt for receipt, _ in self._receipts.values()]

    def state(self) -> dict[str, Any]:
        """Return the switches and counts, as `GET /_sim/state` answers them."""
        with self._lock:
            self.stats.records = {kind.value: len(feed.records) for kind, feed in self._feeds.items()}
            return {
                "city": self.city,
                "slow": self._slow,
                "fail_count": self._fail_count,
                "fail_rate": self._fail_rate,
                "receipt_mode": self.receipt_mode,
                "stats": asdict(self.stats),
            }

    def _now(self) -> datetime:
        # Strictly increasing, so every change sorts after every cursor handed out before it.
        now = max(datetime.now(UTC), self._last_time + timedelta(microseconds=1))
        self._last_time = now
        return now

    def _next_id(self, infix: str) -> str:
        self._serial += 1
        return f"{self._code}-{infix}-{self._serial:06d}"

    def _place(self) -> str:
        return f"{self.name}{self._random.choice(_TOWNS)}"

    def _position(self) -> tuple[float | None, float | None]:
        if self.centre is None:
            return None, None
        lon, lat = self.centre
        return round(lat + self._random.uniform(-0.2, 0.2), 5), round(
            lon + self._random.uniform(-0.2, 0.2), 5
        )

    def _generate(self, counts: tuple[int, int, int]) -> None:
        total = sum(counts)
        now = datetime.now(UTC)
        step = _HISTORY / max(total, 1)
        at = now - _HISTORY
        for kind, count in zip(FeedKind, counts, strict=True):
            feed = self._feeds[kind]
            for _ in range(count):
                at += step
                feed.put(self._make(kind, at))
        self._last_time = at

    def _make(self, kind: FeedKind, at: datetime) -> FeedItem:
        if kind is FeedKind.INCIDENTS:
            return self._make_incident(at)
        if kind is FeedKind.WARNINGS:
            return self._make_warning(at)
        return self._make_resource(at)

    def _make_incident(self, at: datetime) -> PartnerIncident:
        category = self._random.choice(list(IncidentCategory))
        place = self._place()
        title = f"{place}{self._random.choice(_INCIDENTS[category])}"
        return PartnerIncident(
            id=self._next_id("INC"),
            city=self.city,
            category=category,
            level=self._random.choices(list(IncidentLevel), weights=(1, 3, 10, 30))[0],
            title=title,
            description=f"{title}，{self._random.choice(_PROGRESS)}。",
            location=place,
            occurred_at=at - timedelta(minutes=self._random.randint(5, 180)),
            updated_at=at,
            status=IncidentStatus.REPORTED,
            affected_cities=(self.city,),
        )

    def _make_warning(self, at: datetime) -> PartnerWarning:
        colour = self._random.choices(list(WarningColour), weights=(1, 3, 6, 10))[0]
        hazard = self._random.choice(_HAZARDS)
        issued = at - timedelta(minutes=self._random.randint(0, 30))
        return PartnerWarning(
            id=self._next_id("YJ"),
            city=self.city,
            colour=colour,
            category=IncidentCategory.NATURAL,
            area=self._place(),
            headline=f"{self.name}气象台发布{hazard}{colour.label_zh}预警",
            description=f"预计未来12小时内将出现{hazard}天气，请有关单位和人员做好防范准备。",
            issued_at=issued,
            expires_at=issued + timedelta(hours=self._random.choice((6, 12, 24, 48))),
            updated_at=at,
        )

    def _make_resource(self, at: datetime) -> ResourceItem:
        kind = self._random.choice(list(ResourceKind))
        name, unit = self._random.choice(_RESOURCES[kind])
        lat, lon = self._position()
        # Tonnes and ten-thousands come in fractions; people, tents and boats do not.
        quantity = (
            Decimal(self._random.randint(10, 500)) / 10
            if unit in ("吨", "万条")
            else Decimal(self._random.randint(1, 200))
        )
        return ResourceItem(
            id=self._next_id("ZY"),
            city=self.city,
            kind=kind,
            name=f"{self._place()}{name}",
            quantity=quantity,
            unit=unit,
            location=self._place(),
            lat=lat,
            lon=lon,
            updated_at=at,
        )

    def _changed(self, item: FeedItem) -> FeedItem:
        now = self._now()
        if isinstance(item, PartnerIncident):
            return item.model_copy(
                update={
                    "status": _NEXT_STATUS[item.status],
                    "description": f"{item.title}，{self._random.choice(_PROGRESS)}（{now:%H:%M}续报）。",
                    "updated_at": now,
                }
            )
        if isinstance(item, PartnerWarning):
            if item.status is WarningStatus.ACTIVE and self._random.random() < 0.5:
                return item.model_copy(update={"status": WarningStatus.CANCELLED, "updated_at": now})
            return item.model_copy(
                update={
                    "status": WarningStatus.ACTIVE,
                    "expires_at": max(item.expires_at, now) + timedelta(hours=6),
                    "updated_at": now,
                }
            )
        delta = Decimal(self._random.choice((-3, -2, -1, 1, 2, 5)))
        quantity = item.quantity + delta if item.quantity + delta >= 0 else item.quantity + abs(delta)
        return item.model_copy(update={"quantity": quantity, "updated_at": now})

    def _drift(self) -> None:
        assert self.drift_interval is not None
        while not self._stopping.wait(self.drift_interval):
            self.change(self.drift_records)

    # HTTP -------------------------------------------------------------------------------------

    def _handle(self, handler: _Handler, method: str) -> None:
        path = urlsplit(handler.path).path.rstrip("/")
        handler.body_read = False
        try:
            if not self._authorised(handler):
                self._skip_body(handler)
                raise _HttpError(HTTPStatus.UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
            if path.startswith("/_sim/"):
                self._control(handler, method, path)
                return
            self._trouble()
            status, body = self._route(handler, method, path)
        except _HttpError as error:
            if method == "POST" and not handler.body_read:
                # The unread body would be taken for the next request on this connection.
                handler.close_connection = True
            self._send(handler, error.status, error_body(error.code, error.message))
            return
        self._send(handler, status, body)

    def _authorised(self, handler: _Handler) -> bool:
        scheme, _, token = (handler.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode("utf-8"), self._token)

    def _trouble(self) -> None:
        with self._lock:
            self.stats.requests += 1
            delay = self._slow
            failing = self._fail_count > 0 or (
                self._fail_rate > 0 and self._random.random() < self._fail_rate
            )
            if failing:
                self._fail_count = max(0, self._fail_count - 1)
                self.stats.failures_injected += 1
        if delay:
            self._stopping.wait(delay)
        if failing:
            raise _HttpError(HTTPStatus.INTERNAL_SERVER_ERROR, "simulated_failure", "模拟的平台故障")

    def _route(self, handler: _Handler, method: str, path: str) -> tuple[HTTPStatus, bytes]:
        if path.startswith("/feeds/"):
            if method != "GET":
                raise _HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", "use GET")
            return HTTPStatus.OK, self._page(path.removeprefix("/feeds/"), handler.path)
        posts: dict[str, Callable[[bytes], bytes]] = {
            "/bulletins": self._take_bulletin,
            "/verification-requests": self._take_request,
            "/receipts": self._take_receipt,
            "/meeting-invitations": self._take_invitation,
        }
        if path not in posts:
            raise _HttpError(HTTPStatus.NOT_FOUND, "not_found", f"no such resource: {path}")
        if method != "POST":
            raise _HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", "use POST")
        try:
            return HTTPStatus.OK, posts[path](self._body(handler))
        except ContractError as error:
            raise _HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_body", str(error)) from error

    def _page(self, name: str, target: str) -> bytes:
        try:
            kind = FeedKind(name)
        except ValueError:
            raise _HttpError(HTTPStatus.NOT_FOUND, "not_found", f"no feed {name!r}") from None
        query = parse_qs(urlsplit(target).query)
        try:
            limit = int(query.get("limit", [str(DEFAULT_LIMIT)])[-1])
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise _HttpError(HTTPStatus.BAD_REQUEST, "bad_limit", f"limit must be 1 to {MAX_LIMIT}")
        cursor = query.get("cursor", [None])[-1]
        try:
            after = decode_cursor(cursor) if cursor is not None else (_EPOCH, "")
        except ValueError as error:
            raise _HttpError(HTTPStatus.BAD_REQUEST, "bad_cursor", str(error)) from error
        with self._lock:
            return self._feeds[kind].page(after, cursor or _START, limit)

    def _skip_body(self, handler: _Handler) -> None:
        """Read and drop a refused request's body of a sane size, so the client gets the answer.

        Closing a connection with the body unread resets it, and the client would see a broken
        connection (worth retrying) instead of the refusal (not worth it).
        """
        length_header = handler.headers.get("Content-Length") or ""
        if length_header.isdigit() and int(length_header) <= MAX_MESSAGE_BYTES:
            handler.rfile.read(int(length_header))
            handler.body_read = True

    def _body(self, handler: _Handler) -> bytes:
        length_header = handler.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            handler.close_connection = True
            raise _HttpError(HTTPStatus.LENGTH_REQUIRED, "length_required", "send a Content-Length")
        length = int(length_header)
        if length > MAX_MESSAGE_BYTES:
            raise _HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "too_large",
                f"bodies are limited to {MAX_MESSAGE_BYTES} bytes",
            )
        handler.body_read = True
        return handler.rfile.read(length)

    def _take_bulletin(self, raw: bytes) -> bytes:
        bulletin = decode_bulletin(raw)
        with self._lock:
            known = self._bulletins.get(bulletin.id)
            if known is not None and bulletin.cancelled_at is not None:
                return self._cancel(known, bulletin)
            if known is not None:
                return self._repeat(known, bulletin, "bulletin_duplicates")
            reference = self._next_id("TB")
            if self.city not in bulletin.addressed_cities:
                ack = DeliveryAck(accepted=False, platform_ref=reference, reason=f"本通报未发送至{self.name}")
            elif self.receipt_mode == "immediate":
                ack = DeliveryAck(accepted=True, platform_ref=reference, receipt=self._receipt(bulletin.id))
            else:
                ack = DeliveryAck(accepted=True, platform_ref=reference)
                if self.receipt_mode == "delayed":
                    self._later(self.receipt_delay, self._post_receipt, bulletin.id)
            self._bulletins[bulletin.id] = (bulletin, ack)
            self.stats.bulletins += 1
        logger.info("partner platform %s took bulletin %s (%s)", self.city, bulletin.id, bulletin.title)
        return encode(ack)

    def _take_request(self, raw: bytes) -> bytes:
        request = decode_verification_request(raw)
        with self._lock:
            known = self._requests.get(request.id)
            if known is not None:
                return self._repeat(known, request, "verification_duplicates")
            reference = self._next_id("HB")
            if request.to_city != self.city:
                ack = DeliveryAck(accepted=False, platform_ref=reference, reason=f"核报对象不是{self.name}")
            else:
                ack = DeliveryAck(accepted=True, platform_ref=reference)
                if self.answer_delay is not None:
                    self._later(self.answer_delay, self._post_answer, request)
            self._requests[request.id] = (request, ack)
            self.stats.verification_requests += 1
        return encode(ack)

    def _take_invitation(self, raw: bytes) -> bytes:
        invitation = decode_meeting_invitation(raw)
        key = (invitation.id, invitation.sequence)
        with self._lock:
            known = self._invitations.get(key)
            if known is not None:
                return self._repeat(known, invitation, "meeting_invitation_duplicates")
            reference = self._next_id("HS")
            if invitation.city != self.city:
                ack = DeliveryAck(accepted=False, platform_ref=reference, reason=f"邀请对象不是{self.name}")
            else:
                ack = DeliveryAck(accepted=True, platform_ref=reference)
                answered = any(i.id == invitation.id for i, _ in self._invitations.values())
                if (
                    invitation.method is InvitationMethod.REQUEST
                    and not answered
                    and self.answer_delay is not None
                ):
                    self._later(self.answer_delay, self._post_invitation_answer, invitation)
            self._invitations[key] = (invitation, ack)
            self.invitation_arrivals[key] = datetime.now(UTC)
            self.stats.meeting_invitations += 1
        return encode(ack)

    def _take_receipt(self, raw: bytes) -> bytes:
        receipt = decode_receipt(raw)
        key = (receipt.bulletin_id, receipt.city)
        with self._lock:
            known = self._receipts.get(key)
            if known is not None:
                return self._repeat(known, receipt, "receipt_duplicates")
            ack = DeliveryAck(accepted=True, platform_ref=self._next_id("HZ"))
            self._receipts[key] = (receipt, ack)
            self.stats.receipts += 1
        return encode(ack)

    def _cancel(self, known: tuple[BulletinDelivery, DeliveryAck], incoming: BulletinDelivery) -> bytes:
        stored, ack = known
        if stored != incoming.model_copy(update={"cancelled_at": stored.cancelled_at}):
            raise _HttpError(
                HTTPStatus.CONFLICT, "id_conflict", "this id was delivered before with other content"
            )
        if stored.cancelled_at is None:
            self._bulletins[incoming.id] = (incoming, ack)
            self.stats.bulletin_cancellations += 1
            logger.info("partner platform %s withdrew bulletin %s", self.city, incoming.id)
        return encode(ack)

    def _repeat(self, known: tuple[BaseModel, DeliveryAck], incoming: BaseModel, counter: str) -> bytes:
        stored, ack = known
        if stored != incoming:
            raise _HttpError(
                HTTPStatus.CONFLICT, "id_conflict", "this id was delivered before with other content"
            )
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        return encode(ack)

    def _receipt(self, bulletin_id: UUID) -> Receipt:
        return Receipt(
            bulletin_id=bulletin_id,
            city=self.city,
            received_at=datetime.now(UTC),
            acknowledged_by=f"{self.name}应急管理局值班员",
        )

    def _control(self, handler: _Handler, method: str, path: str) -> None:
        if path == "/_sim/state" and method == "GET":
            self._send(handler, HTTPStatus.OK, json.dumps(self.state(), ensure_ascii=False).encode("utf-8"))
            return
        if path != "/_sim/mode" or method != "POST":
            raise _HttpError(HTTPStatus.NOT_FOUND, "not_found", "use POST /_sim/mode or GET /_sim/state")
        try:
            control = SimControl.model_validate_json(self._body(handler))
        except ValidationError as error:
            raise _HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_body", str(error)) from error
        if control.slow is not None:
            self.slow(control.slow)
        if control.fail_count is not None or control.fail_rate is not None:
            self.fail(control.fail_count or 0, rate=control.fail_rate or 0.0)
        if control.receipt_mode is not None:
            try:
                self.set_receipt_mode(control.receipt_mode)
            except ValueError as error:
                raise _HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_body", str(error)) from error
        if control.change:
            self.change(control.change, control.change_kind)
        self._send(handler, HTTPStatus.OK, json.dumps(self.state(), ensure_ascii=False).encode("utf-8"))
        if control.away is not None:
            # Answer first: going away cuts this very connection.
            handler.close_connection = True
            self.away(control.away)

    @staticmethod
    def _send(handler: _Handler, status: HTTPStatus, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        if status is HTTPStatus.UNAUTHORIZED:
            handler.send_header("WWW-Authenticate", 'Bearer realm="partner-platform"')
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)

    # Posting to the hub -----------------------------------------------------------------------

    def _later(self, delay: float, job: Callable[..., None], *args: Any) -> None:
        def run() -> None:
            with self._lock:
                self._timers.discard(timer)
            job(*args)

        timer = threading.Timer(delay, run)
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def _post_receipt(self, bulletin_id: UUID) -> None:
        receipt = self._receipt(bulletin_id)
        if self._post_to_hub(HUB_RECEIPT_PATH.format(bulletin_id=bulletin_id), encode(receipt)):
            with self._lock:
                self.receipts_posted.append(receipt)
                self.stats.receipts_posted += 1

    def _post_answer(self, request: VerificationRequestDelivery) -> None:
        answer = VerificationAnswer(
            request_id=request.id,
            city=self.city,
            answer=f"经{self.name}核实，{self._random.choice(_PROGRESS)}。",
            answered_by=f"{self.name}应急管理局值班员",
            answered_at=datetime.now(UTC),
        )
        if self._post_to_hub(HUB_ANSWER_PATH.format(request_id=request.id), encode(answer)):
            with self._lock:
                self.answers_posted.append(answer)
                self.stats.answers_posted += 1

    def _post_invitation_answer(self, invitation: MeetingInvitationDelivery) -> None:
        # The duty room accepts for the city, or for its expert, as duty officers do.
        body = json.dumps({"answer": "accept", "note": f"{self.name}值班室确认参加"}).encode("utf-8")
        if self._post_to_hub(invitation.answer_path, body):
            with self._lock:
                self.stats.invitation_answers_posted += 1

    def _post_to_hub(self, path: str, body: bytes) -> bool:
        """Post to the hub, retrying with back-off while it is away; return whether it took it."""
        assert self.hub_url is not None
        url = self.hub_url + path
        headers = {"Authorization": f"Bearer {self._hub_token}", "Content-Type": "application/json"}
        for attempt in range(_HUB_ATTEMPTS):
            if self._stopping.is_set():
                return False
            try:
                response = requests.post(url, data=body, headers=headers, timeout=_HUB_TIMEOUT)
            except requests.RequestException as error:
                logger.warning("partner platform %s: posting to %s failed: %s", self.city, url, error)
            else:
                with response:
                    if response.ok:
                        return True
                    # A 4xx will be the same next time: the hub refuses the document itself.
                    if response.status_code < 500 and response.status_code != 429:
                        logger.error(
                            "hub refused %s with HTTP %d: %s", url, response.status_code, response.text[:500]
                        )
                        return False
                    logger.warning("hub answered %s with HTTP %d", url, response.status_code)
            self._stopping.wait(min(0.25 * 2**attempt, 10.0))
        logger.error("partner platform %s gave up posting to %s", self.city, url)
        return False


def run_partner(
    city: str,
    port: int,
    token: str,
    *,
    host: str = "127.0.0.1",
    stop: threading.Event | None = None,
    **options: Any,
) -> None:
    """Run a simulated platform for `city` until `stop` is set or the process is interrupted."""
    stop = stop or threading.Event()
    simulator = PartnerSimulator(city, token=token, port=port, host=host, **options)
    with simulator:
        logger.info("simulated platform of %s at %s; Ctrl-C to stop", city, simulator.url)
        try:
            stop.wait()
        except KeyboardInterrupt:
            logger.info("interrupted; stopping the simulated platform of %s", city)
