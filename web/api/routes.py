"""API handlers: parse, call one service, commit, answer."""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from contracts.common import IncidentCategory, IncidentLevel, IncidentStatus
from contracts.errors import ContractError, Problem, decode_json
from contracts.incident import FollowUpCreate, IncidentCreate, IncidentUpdate
from hub.app import settings_of
from hub.extensions import db
from hub.models import City
from hub.services import cities as city_service
from hub.services import incidents as incident_service
from hub.services import notifications as notification_service
from web.api import api
from web.api.openapi import openapi_document
from web.auth import api_auth, current_actor
from web.kick import kick_flows


def _city_json(city: City) -> dict[str, object]:
    return {
        "slug": city.slug,
        "division_code": city.division_code,
        "name_zh": city.name_zh,
        "name_en": city.name_en,
        "province_zh": city.province_zh,
        "province_en": city.province_en,
        "centre": [city.longitude, city.latitude],
        "neighbours": [n.slug for n in city.neighbours],
    }


def _body(model: type) -> object:
    if not request.mimetype == "application/json":
        raise ContractError(
            "the body must be JSON (Content-Type: application/json)",
            [Problem("", f"unsupported content type {request.mimetype or 'none'!r}")],
        )
    return decode_json(model, request.get_data(cache=False), settings_of(current_app).max_body_bytes)


def _query_enum(name: str, parse: type) -> object | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    try:
        return parse[value] if parse is IncidentLevel else parse(value)
    except (KeyError, ValueError) as exc:
        raise ContractError(
            f"bad query parameter {name}={value!r}", [Problem(name, "unknown value")]
        ) from exc


def _query_int(name: str, default: int) -> int:
    value = request.args.get(name, str(default))
    # ASCII digits only ("²" is a digit to str.isdigit) and few enough for any database offset.
    if not (value.isascii() and value.isdigit()) or len(value) > 6:
        raise ContractError(
            f"bad query parameter {name}={value[:20]!r}",
            [Problem(name, "must be a whole number below a million")],
        )
    return int(value)


def _query_bool(name: str) -> bool | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    if value.lower() not in ("true", "false", "1", "0"):
        raise ContractError(f"bad query parameter {name}={value!r}", [Problem(name, "must be true or false")])
    return value.lower() in ("true", "1")


def _query_time(name: str) -> datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ContractError(
            f"bad query parameter {name}={value!r}", [Problem(name, "not an ISO 8601 time")]
        ) from exc
    if parsed.tzinfo is None:
        raise ContractError(
            f"bad query parameter {name}={value!r}", [Problem(name, "needs a timezone offset")]
        )
    return parsed


@api.get("/cities")
@api_auth
def list_cities() -> ResponseReturnValue:
    """List the member cities with their neighbours."""
    return jsonify(items=[_city_json(c) for c in city_service.all_cities(db.session)])


@api.get("/cities/<slug>")
@api_auth
def get_city(slug: str) -> ResponseReturnValue:
    """Return one member city."""
    return jsonify(_city_json(city_service.by_slug(db.session, slug)))


@api.get("/incidents")
@api_auth
def list_incidents() -> ResponseReturnValue:
    """List incidents, newest first, with filters and pagination."""
    level = _query_enum("level", IncidentLevel)
    filters = incident_service.IncidentFilter(
        city=request.args.get("city") or None,
        level_at_most=int(level) if level is not None else None,  # type: ignore[call-overload]
        category=_query_enum("category", IncidentCategory),  # type: ignore[arg-type]
        status=_query_enum("status", IncidentStatus),  # type: ignore[arg-type]
        open_only=bool(_query_bool("open")),
        exercise=_query_bool("exercise"),
        since=_query_time("since"),
    )
    page = incident_service.list_incidents(
        db.session, filters, page=_query_int("page", 1), per_page=_query_int("per_page", 20)
    )
    return jsonify(
        items=[incident_service.to_contract(i).model_dump(mode="json") for i in page.items],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
        pages=page.pages,
    )


@api.post("/incidents")
@api_auth
def create_incident() -> ResponseReturnValue:
    """Record an incident for the caller's city."""
    data = _body(IncidentCreate)
    incident = incident_service.create_incident(db.session, current_actor(), data)  # type: ignore[arg-type]
    db.session.commit()
    kick_flows(current_app)
    body = incident_service.to_contract(incident).model_dump(mode="json")
    return (
        jsonify(body),
        201,
        {"Location": url_for("api.get_incident", incident_id=incident.public_id)},
    )


@api.get("/incidents/<uuid:incident_id>")
@api_auth
def get_incident(incident_id: uuid.UUID) -> ResponseReturnValue:
    """Return one incident with its reports."""
    internal_id = incident_service.id_for_public_id(db.session, incident_id)
    incident = incident_service.get_incident(db.session, internal_id)
    return jsonify(incident_service.to_contract(incident).model_dump(mode="json"))


@api.patch("/incidents/<uuid:incident_id>")
@api_auth
def update_incident(incident_id: uuid.UUID) -> ResponseReturnValue:
    """Change an incident of the caller's city: level, status or affected cities."""
    data: IncidentUpdate = _body(IncidentUpdate)  # type: ignore[assignment]
    internal_id = incident_service.id_for_public_id(db.session, incident_id)
    changes = incident_service.IncidentChanges(
        level=data.level,
        status=data.status,
        affected_cities=tuple(data.affected_cities) if data.affected_cities is not None else None,
    )
    incident = incident_service.update_incident(db.session, current_actor(), internal_id, changes)
    db.session.commit()
    kick_flows(current_app)
    return jsonify(incident_service.to_contract(incident).model_dump(mode="json"))


@api.post("/incidents/<uuid:incident_id>/reports")
@api_auth
def add_report(incident_id: uuid.UUID) -> ResponseReturnValue:
    """Add a follow-up or final report to an incident of the caller's city."""
    data = _body(FollowUpCreate)
    internal_id = incident_service.id_for_public_id(db.session, incident_id)
    incident_service.add_report(db.session, current_actor(), internal_id, data)  # type: ignore[arg-type]
    db.session.commit()
    incident = incident_service.get_incident(db.session, internal_id)
    return jsonify(incident_service.to_contract(incident).model_dump(mode="json")), 201


@api.get("/notifications")
@api_auth
def list_notifications() -> ResponseReturnValue:
    """List the caller's city's notifications, newest first."""
    actor = current_actor()
    if actor.city_id is None:
        return jsonify(items=[])
    items = notification_service.for_city(
        db.session,
        actor.city_id,
        limit=min(_query_int("limit", 50), 200),
        unread_only=bool(_query_bool("unread")),
    )
    return jsonify(items=[notification_service.to_contract(n).model_dump(mode="json") for n in items])


@api.post("/notifications/<uuid:notification_id>/read")
@api_auth
def read_notification(notification_id: uuid.UUID) -> ResponseReturnValue:
    """Mark a notification of the caller's city as read."""
    internal_id = notification_service.id_for_public_id(db.session, notification_id)
    notification = notification_service.mark_read(db.session, current_actor(), internal_id)
    db.session.commit()
    return jsonify(notification_service.to_contract(notification).model_dump(mode="json"))


@api.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """Serve the API's OpenAPI document."""
    return jsonify(openapi_document())
