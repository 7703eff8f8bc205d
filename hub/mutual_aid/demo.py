"""The demo's Linyi flood: a coordinator of Linyi starts it and watches three neighbours answer.

`start_linyi_flood` records a level III flood on the Yi river in Linyi and a request for drainage
pumps and assault boats; the rings then ask Xuzhou, Zaozhuang and Lianyungang first, whose
pre-positioned flood depots near the border (`seed_flood_depots`) lie within the first ring.
In the demo only, the duty officers of those three cities are played by the hub
(`play_partners`, run by a keyed flow request every `SLOT_SECONDS` while a flood request is
open): each answers its ask with its best stored package, then authorises, dispatches, grants an
extension and confirms the return, each move `PACE` after the one before, so that the person
playing Linyi accepts offers, confirms arrivals and releases on the live request page. Every
move is one service call whose state check makes a repeated move do nothing.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select

from contracts.common import IncidentCategory, IncidentLevel
from contracts.incidents import IncidentCreate
from contracts.mutual_aid import AidPackage, AidState, Contact, GeoPoint, RegistryEntry, ReportTo, RequestLine
from contracts.resource_types import CATALOGUE, Grade, TypeRef, satisfies
from hub.incidents import services as incidents
from hub.kernel import flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, ServiceError
from hub.kernel.models import City, Role
from hub.kernel.types import DbSession, utcnow
from hub.mutual_aid import services
from hub.mutual_aid.models import AidAsk, AidCommitment, AidRequest, AidResource

if TYPE_CHECKING:
    from hub.config import Settings

log = logging.getLogger(__name__)

PLAY = "aid-demo-partners"
TITLE = "沂河临沂城区段洪水：请求排涝泵和冲锋舟"
PARTNERS = ("xuzhou", "zaozhuang", "lianyungang")
PACE = timedelta(seconds=15)
ZERO = Decimal(0)
SLOT_SECONDS = 10
EXTENSION = timedelta(hours=24)
SCENE = ReportTo(place="临沂市河东区沂河东岸抢险现场", point=GeoPoint(lat=35.08, lon=118.40))


@dataclass(frozen=True)
class Depot:
    """A pre-positioned flood depot of a neighbour near the Linyi border."""

    city: str
    external_id: str
    type_code: str
    quantity: int
    name: str
    place: str
    lat: float
    lon: float
    personnel: int
    daily_rate: int


FLOOD_DEPOTS = (
    Depot(
        "xuzhou",
        "xinyi-pumps",
        "equipment.pump.drainage",
        16,
        "新沂前置排涝泵",
        "新沂市防汛物资前置库",
        34.369,
        118.354,
        8,
        1200,
    ),
    Depot(
        "xuzhou",
        "xinyi-boats",
        "equipment.boat.assault",
        8,
        "新沂前置冲锋舟",
        "新沂市防汛物资前置库",
        34.372,
        118.349,
        4,
        600,
    ),
    Depot(
        "zaozhuang",
        "taierzhuang-pumps",
        "equipment.pump.drainage",
        10,
        "台儿庄前置排涝泵",
        "台儿庄区运河防汛仓库",
        34.562,
        117.734,
        6,
        1100,
    ),
    Depot(
        "zaozhuang",
        "taierzhuang-boats",
        "equipment.boat.assault",
        6,
        "台儿庄前置冲锋舟",
        "台儿庄区运河防汛仓库",
        34.566,
        117.728,
        3,
        600,
    ),
    Depot(
        "lianyungang",
        "donghai-pumps",
        "equipment.pump.drainage",
        8,
        "东海前置排涝泵",
        "东海县防汛物资仓库",
        34.542,
        118.771,
        5,
        1150,
    ),
    Depot(
        "lianyungang",
        "donghai-boats",
        "equipment.boat.assault",
        10,
        "东海前置冲锋舟",
        "东海县防汛物资仓库",
        34.545,
        118.766,
        4,
        650,
    ),
)
"""Depots (the owner's id, type, stock, where) that put the three neighbours in the first ring."""


def _actor(city: City, name: str) -> Actor:
    return Actor("system", name, city.id, Role.COORDINATOR)


def seed_flood_depots(session: DbSession) -> int:
    """Register the neighbours' depots near Linyi that are not there yet; return how many were added."""
    now = utcnow()
    cities = {c.slug: c for c in session.scalars(select(City).where(City.slug.in_(PARTNERS)))}
    added = 0
    for depot in FLOOD_DEPOTS:
        city = cities[depot.city]
        have = session.scalar(
            select(AidResource.id).where(
                AidResource.owner_city_id == city.id, AidResource.external_id == depot.external_id
            )
        )
        if have is not None:
            continue
        row = CATALOGUE[depot.type_code]
        short = city.name_zh.removesuffix("市")
        services.register_entry(
            session,
            _actor(city, "seed"),
            RegistryEntry(
                id=depot.external_id,
                owner_city=city.slug,
                type_code=depot.type_code,
                kind=row.kind,
                name=depot.name,
                quantity=Decimal(depot.quantity),
                unit=row.unit,
                location=GeoPoint(lat=depot.lat, lon=depot.lon),
                place=depot.place,
                contact=Contact(name=f"{short}应急局值班室", phone=f"0{city.division_code[:4]}-12350"),
                package=AidPackage(
                    personnel=depot.personnel,
                    daily_rate=Decimal(depot.daily_rate),
                    self_sufficiency_hours=72,
                    mobilise_minutes=60,
                ),
                verified_at=now - timedelta(days=2),
                verified_by=f"{short}应急局",
                updated_at=now,
            ),
        )
        added += 1
    session.flush()
    return added


def start_linyi_flood(session: DbSession, actor: Actor, *, now: datetime | None = None) -> AidRequest:
    """Record the flood for Linyi (the actor's city) and ask for pumps and boats; return the request."""
    now = now or utcnow()
    linyi = session.scalar(select(City).where(City.slug == "linyi"))
    if linyi is None or actor.city_id != linyi.id:
        raise Forbidden("the Linyi flood is played by a person of Linyi")
    incident = incidents.create_incident(
        session,
        actor,
        IncidentCreate(
            category=IncidentCategory.NATURAL,
            level=IncidentLevel.III,
            title="沂河临沂城区段超警戒水位，河东区多处内涝",
            description=(
                "沂河临沂站水位超警戒 1.2 米，河东区、罗庄区低洼片区积水 0.5–1.5 米，已转移群众 3,200 人。"
            ),
            location=SCENE.place,
            latitude=SCENE.point.lat,
            longitude=SCENE.point.lon,
            occurred_at=now - timedelta(minutes=40),
            affected_cities=("linyi",),
        ),
    )
    needed_by = (now + timedelta(hours=3)).replace(second=0, microsecond=0)
    wanted = (
        ("L1", "equipment.pump.drainage", 20, "河东区低洼片区排涝，每台不小于 500 m³/h"),
        ("L2", "equipment.boat.assault", 12, "转移被困群众，含操舟手"),
    )
    lines = [
        RequestLine(
            line_id=line_id,
            type_code=type_code,
            quantity=Decimal(quantity),
            unit=CATALOGUE[type_code].unit,
            needed_by=needed_by,
            duration_hours=72,
            report_to=SCENE,
            note=note,
        )
        for line_id, type_code, quantity, note in wanted
    ]
    return services.create_request(
        session,
        actor,
        title=TITLE,
        lines=lines,
        contact=Contact(name="临沂市应急局指挥中心", phone="0539-12350", role="值班长"),
        incident_id=incident.id,
    )


def _open_floods(session: DbSession) -> list[AidRequest]:
    return list(
        session.scalars(select(AidRequest).where(AidRequest.title == TITLE, AidRequest.status == "open"))
    )


def schedule_partners(session: DbSession, now: datetime, settings: Settings) -> None:
    """In the demo, ask for the neighbours' next moves once per slot while a flood request is open."""
    if not settings.demo or not _open_floods(session):
        return
    slot = int(now.timestamp()) // SLOT_SECONDS
    flow_requests.enqueue(session, PLAY, key=f"aid-demo:partners:{slot}", parameters={})


_DEPOT_IDS = frozenset(d.external_id for d in FLOOD_DEPOTS)


def _best_entry(session: DbSession, city_id: int, wanted: TypeRef) -> AidResource | None:
    entries = session.scalars(
        select(AidResource).where(AidResource.owner_city_id == city_id, AidResource.status == "available")
    )
    fitting = [
        e
        for e in entries
        if e.available > 0
        and satisfies(TypeRef(e.type_code, Grade(e.grade) if e.grade is not None else None), wanted)
    ]
    # The depot near Linyi first, then the largest stock.
    return max(fitting, key=lambda e: (e.external_id in _DEPOT_IDS, e.available, -e.id), default=None)


def _order_number(city: City, commitment: AidCommitment) -> str:
    short = city.name_zh.removesuffix("市")[:2]
    number = zlib.crc32(str(commitment.public_id).encode()) % 900 + 100
    return f"{short}应急派〔{commitment.start_at.year}〕{number}号"


def _answer(session: DbSession, ask: AidAsk, request: AidRequest) -> list[str]:
    actor = _actor(ask.city, f"demo-{ask.city.slug}")
    moves = []
    progress = {p.line.id: p for p in services.progress(session, request)}
    for line in request.lines:
        wanted = TypeRef(line.type_code, Grade(line.min_grade) if line.min_grade is not None else None)
        entry = _best_entry(session, ask.city_id, wanted)
        p = progress[line.id]
        short = line.quantity - p.offered - p.committed - p.en_route - p.on_scene
        # Each neighbour offers its share, so that all three are seen to help.
        share = min(
            short,
            (line.quantity / len(PARTNERS)).to_integral_value(rounding=ROUND_CEILING),
            entry.available if entry else ZERO,
        )
        if entry is not None and share > 0:
            quantity = Decimal(1) if entry.bookable else share
            what = f"{ask.city.slug} offers {quantity.normalize()} of {entry.external_id}"
            moves.append(_try(session, what, services.make_offer, actor, line.id, entry.id, quantity))
            progress = {p.line.id: p for p in services.progress(session, request)}
    if not any(moves):
        moves.append(_try(session, f"{ask.city.slug} declines", services.decline_ask, actor, request.id))
    return [m for m in moves if m]


def _try(session: DbSession, what: str, step: object, *args: object) -> str:
    """Take one move in a savepoint; a move the rules refuse now is logged and left for later."""
    try:
        with session.begin_nested():
            step(session, *args)  # type: ignore[operator]
    except ServiceError as refused:
        log.info("demo partner move refused: %s: %s", what, refused.message)
        return ""
    return what


def _owner_move(session: DbSession, commitment: AidCommitment, now: datetime) -> str:
    if commitment.updated_at > now - PACE:
        return ""
    city = commitment.owner_city
    actor = _actor(city, f"demo-{city.slug}")
    state, cid, name = AidState(commitment.state), commitment.id, f"{city.slug} #{commitment.id}"
    if state is AidState.ACCEPTED:
        return _try(
            session, f"{name} authorised", services.authorise, actor, cid, _order_number(city, commitment)
        )
    if state is AidState.AUTHORISED:
        return _try(session, f"{name} dispatched", services.dispatch, actor, cid)
    if state is AidState.EXTENSION_ASKED:
        until = commitment.extension_until or commitment.end_at + EXTENSION
        return _try(session, f"{name} extended", services.answer_extension, actor, cid, until)
    if state is AidState.RELEASED:
        return _try(session, f"{name} returned", services.confirm_return, actor, cid)
    return ""


def play_partners(session: DbSession, *, now: datetime | None = None) -> list[str]:
    """Take the neighbours' moves that are due on every open flood request; return what was done."""
    now = now or utcnow()
    done: list[str] = []
    for request in _open_floods(session):
        for ask in services.asks(session, request.id):
            if ask.city.slug in PARTNERS and ask.answered_at is None and ask.asked_at <= now - PACE:
                done += _answer(session, ask, request)
        for commitment in services.commitments_of(session, request.id):
            if commitment.owner_city.slug in PARTNERS:
                move = _owner_move(session, commitment, now)
                if move:
                    done.append(move)
    session.flush()
    return done
