"""API for incidents, their reports and the notices to cities: parse, call one service, commit, answer."""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from contracts.common import IncidentCategory, IncidentLevel, IncidentStatus
from contracts.incidents import FollowUpCreate, IncidentCreate, IncidentUpdate
from hub.extensions import db
from hub.incidents import notifications as notification_service
from hub.incidents import services as incident_service
from web.api import params
from web.auth import api_auth, current_actor
from web.kick import kick_flows

bp = Blueprint("incidents_api", __name__, url_prefix="/api/v1")


@bp.get("/incidents")
@api_auth
def list_incidents() -> ResponseReturnValue:
    """List incidents, newest first, with filters and pagination."""
    level = params.query_enum("level", IncidentLevel)
    filters = incident_service.IncidentFilter(
        city=request.args.get("city") or None,
        level_at_most=int(level) if level is not None else None,
        category=params.query_enum("category", IncidentCategory),
        status=params.query_enum("status", IncidentStatus),
        open_only=bool(params.query_bool("open")),
        exercise=params.query_bool("exercise"),
        since=params.query_time("since"),
    )
    page = incident_service.list_incidents(
        db.session, filters, page=params.query_int("page", 1), per_page=params.query_int("per_page", 20)
    )
    return jsonify(
        items=[incident_service.to_contract(i).model_dump(mode="json") for i in page.items],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
        pages=page.pages,
    )


@bp.post("/incidents")
@api_auth
def create_incident() -> ResponseReturnValue:
    """Record an incident for the caller's city."""
    data = params.json_body(IncidentCreate)
    incident = incident_service.create_incident(db.session, current_actor(), data)
    db.session.commit()
    kick_flows(current_app)
    body = incident_service.to_contract(incident).model_dump(mode="json")
    return (
        jsonify(body),
        201,
        {"Location": url_for("incidents_api.get_incident", incident_id=incident.public_id)},
    )


@bp.get("/incidents/<uuid:incident_id>")
@api_auth
def get_incident(incident_id: uuid.UUID) -> ResponseReturnValue:
    """Return one incident with its reports."""
    internal_id = incident_service.id_for_public_id(db.session, incident_id)
    incident = incident_service.get_incident(db.session, internal_id)
    return jsonify(incident_service.to_contract(incident).model_dump(mode="json"))


@bp.patch("/incidents/<uuid:incident_id>")
@api_auth
def update_incident(incident_id: uuid.UUID) -> ResponseReturnValue:
    """Change an incident of the caller's city: level, status or affected cities."""
    data: IncidentUpdate = params.json_body(IncidentUpdate)
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


@bp.post("/incidents/<uuid:incident_id>/reports")
@api_auth
def add_report(incident_id: uuid.UUID) -> ResponseReturnValue:
    """Add a follow-up or final report to an incident of the caller's city."""
    data = params.json_body(FollowUpCreate)
    internal_id = incident_service.id_for_public_id(db.session, incident_id)
    incident_service.add_report(db.session, current_actor(), internal_id, data)
    db.session.commit()
    incident = incident_service.get_incident(db.session, internal_id)
    return jsonify(incident_service.to_contract(incident).model_dump(mode="json")), 201


@bp.get("/notifications")
@api_auth
def list_notifications() -> ResponseReturnValue:
    """List the caller's city's notifications, newest first."""
    actor = current_actor()
    if actor.city_id is None:
        return jsonify(items=[])
    items = notification_service.for_city(
        db.session,
        actor.city_id,
        limit=min(params.query_int("limit", 50), 200),
        unread_only=bool(params.query_bool("unread")),
    )
    return jsonify(items=[notification_service.to_contract(n).model_dump(mode="json") for n in items])


@bp.post("/notifications/<uuid:notification_id>/read")
@api_auth
def read_notification(notification_id: uuid.UUID) -> ResponseReturnValue:
    """Mark a notification of the caller's city as read."""
    internal_id = notification_service.id_for_public_id(db.session, notification_id)
    notification = notification_service.mark_read(db.session, current_actor(), internal_id)
    db.session.commit()
    return jsonify(notification_service.to_contract(notification).model_dump(mode="json"))
