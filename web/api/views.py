"""The API's shared part: the member cities, the audit trail, the dead letters, the hub's status and
readiness, and the API document."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import Field

from hub.extensions import db
from hub.kernel import audit as audit_service
from hub.kernel import cities as city_service
from hub.kernel import dead_letters
from hub.kernel.errors import Forbidden
from hub.kernel.models import AuditEntry, City
from hub.runtime.status import Component
from web import status as hub_status
from web.api.models import BridgeOut, CityList, CityOut, ComponentOut, NodeOut, Out, StatusOut, StoredTime
from web.api.params import Query, QueryInt
from web.api.spec import openapi_document, operation
from web.auth import api_auth, current_actor

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _city(city: City) -> CityOut:
    return CityOut(
        slug=city.slug,
        division_code=city.division_code,
        name_zh=city.name_zh,
        name_en=city.name_en,
        province_zh=city.province_zh,
        province_en=city.province_en,
        centre=[city.longitude, city.latitude],
        neighbours=[n.slug for n in city.neighbours],
    )


@bp.get("/cities")
@api_auth
@operation(tags=("cities",), HTTP_200=CityList)
def list_cities() -> ResponseReturnValue:
    """List the member cities with their neighbours."""
    cities = [_city(c) for c in city_service.all_cities(db.session)]
    return CityList(items=cities).model_dump(mode="json")


@bp.get("/cities/<slug>")
@api_auth
@operation(tags=("cities",), HTTP_200=CityOut)
def get_city(slug: str) -> ResponseReturnValue:
    """Return one member city."""
    return _city(city_service.by_slug(db.session, slug)).model_dump(mode="json")


class AuditEntryOut(Out):
    """One change in the audit trail: who (person, platform or the hub), which city, when, what."""

    id: int
    at: StoredTime
    actor_kind: str
    actor: str
    city: str | None
    action: str
    entity_type: str
    entity_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditList(Out):
    """Audit entries, newest first."""

    items: list[AuditEntryOut]


class AuditQuery(Query):
    """Which page of the audit trail."""

    limit: QueryInt = Field(100, ge=1, le=500)
    offset: QueryInt = Field(0, ge=0)


def _audit_entry(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id,
        at=entry.at,
        actor_kind=entry.actor_kind,
        actor=entry.actor,
        city=entry.city.slug if entry.city else None,
        action=entry.action,
        entity_type=entry.entity_type,
        entity_id=entry.entity_id,
        before=entry.before,
        after=entry.after,
    )


@bp.get("/audit")
@api_auth
@operation(query=AuditQuery, tags=("audit",), HTTP_200=(AuditList, "Newest first"))
def list_audit(query: AuditQuery) -> ResponseReturnValue:
    """List the audit trail: the caller's own city's entries (an administrator's: the region's)."""
    actor = current_actor()
    if not actor.is_admin and actor.city_id is None:
        raise Forbidden("the audit trail is read for a city")
    entries = audit_service.recent(
        db.session,
        city_id=None if actor.is_admin else actor.city_id,
        limit=query.limit,
        offset=query.offset,
    )
    return AuditList(items=[_audit_entry(e) for e in entries]).model_dump(mode="json")


class DeadLetterOut(Out):
    """An inbound message that broke its contract: where it came from, why it was refused, and the
    first bytes of it (`payload_text` as UTF-8, unreadable bytes replaced)."""

    id: int
    received_at: StoredTime
    source: str
    topic: str
    reason: str
    size: int
    payload_text: str


class DeadLetterList(Out):
    """Dead letters, newest first, and how many are kept in all."""

    total: int
    items: list[DeadLetterOut]


class DeadLetterQuery(Query):
    """How many of the newest dead letters."""

    limit: QueryInt = Field(100, ge=1, le=500)


@bp.get("/dead-letters")
@api_auth
@operation(query=DeadLetterQuery, tags=("dead letters",), HTTP_200=(DeadLetterList, "Newest first"))
def list_dead_letters(query: DeadLetterQuery) -> ResponseReturnValue:
    """List the inbound messages that broke their contract, as the dead-letters page shows them:
    the caller's city's (those from its platform or under its MQTT subtree), or an administrator's
    every one, including those no city can be told for."""
    actor = current_actor()
    if not actor.is_admin and actor.city_id is None:
        raise Forbidden("dead letters are read for a city")
    city_id = None if actor.is_admin else actor.city_id
    letters = dead_letters.recent(db.session, limit=query.limit, city_id=city_id)
    items = [
        DeadLetterOut(
            id=d.id,
            received_at=d.received_at,
            source=d.source,
            topic=d.topic,
            reason=d.reason,
            size=d.size,
            payload_text=d.payload.decode("utf-8", "replace"),
        )
        for d in letters
    ]
    return DeadLetterList(total=dead_letters.count(db.session, city_id=city_id), items=items).model_dump(
        mode="json"
    )


@bp.get("/openapi.json")
@operation(public=True, HTTP_200=(None, "This OpenAPI document"))
def openapi() -> ResponseReturnValue:
    """Serve the API's OpenAPI document."""
    return jsonify(openapi_document(current_app))


def _component(component: Component) -> ComponentOut:
    return ComponentOut(
        name=component.name,
        kind=component.kind,
        up=component.up,
        detail=component.detail,
        checked_at=component.checked_at,
        last_seen=component.last_seen,
    )


@bp.get("/status")
@api_auth
@operation(tags=("status",), HTTP_200=StatusOut)
def status() -> ResponseReturnValue:
    """Each part of the running hub, for monitoring; `ok` when every part is up."""
    parts = hub_status.components()
    return StatusOut(
        ok=all(p.up for p in parts),
        components=[_component(p) for p in parts],
        nodes=[NodeOut.model_validate(asdict(node)) for node in hub_status.nodes()],
        bridges=[BridgeOut.model_validate(asdict(bridge)) for bridge in hub_status.bridges()],
    ).model_dump(mode="json")


@bp.get("/ready")
@operation(public=True, tags=("status",), HTTP_200=StatusOut, HTTP_503=StatusOut)
def ready() -> ResponseReturnValue:
    """Readiness for a load balancer: 200 when the database and the broker link answer, else 503."""
    parts = {p.name: p for p in hub_status.components()}
    needed = [parts[name] for name in ("database", "mqtt-link") if name in parts]
    ok = all(p.up for p in needed)
    answer = StatusOut(ok=ok, components=[_component(p) for p in needed]).model_dump(mode="json")
    return answer, 200 if ok else 503
