"""API for incidents, their reports and the notices to cities: parse, call one service, commit, answer."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, current_app, url_for
from flask.typing import ResponseReturnValue
from pydantic import Field

from contracts.common import IncidentCategory, IncidentStatus, Level
from contracts.incidents import FollowUpCreate, IncidentCreate, IncidentReport, IncidentUpdate, Notification
from hub.extensions import db
from hub.incidents import notifications as notification_service
from hub.incidents import services as incident_service
from hub.incidents.models import Incident
from hub.incidents.services import MAX_PER_PAGE
from web.api.models import ErrorBody, Out
from web.api.params import MAX_QUERY_INT, Query, QueryBool, QueryInt, QueryTime
from web.api.spec import operation
from web.auth import api_auth, current_actor
from web.kick import kick_flows

bp = Blueprint("incidents_api", __name__, url_prefix="/api/v1")
TAGS = ("incidents",)
MAX_NOTIFICATIONS = 200


class IncidentQuery(Query):
    """Filters and page of the incident list."""

    city: str | None = Field(None, description="reporting or affected city")
    level: Level | None = Field(None, description="this level or more severe")
    category: IncidentCategory | None = None
    status: IncidentStatus | None = None
    open: QueryBool | None = Field(None, description="only incidents not closed")
    exercise: QueryBool | None = Field(None, description="drill or live incidents only")
    since: QueryTime | None = Field(None, description="reported at or after")
    page: QueryInt = Field(1, ge=1, le=MAX_QUERY_INT)
    per_page: QueryInt = Field(20, ge=1, le=MAX_PER_PAGE)


class IncidentPage(Out):
    """A page of incidents, most recently reported first."""

    items: list[IncidentReport]
    page: int
    per_page: int
    total: int
    pages: int


class NotificationQuery(Query):
    """Which of the caller's city's notifications to list."""

    unread: QueryBool | None = Field(None, description="only unread")
    limit: QueryInt = Field(
        50, ge=0, le=MAX_QUERY_INT, description=f"how many (at most {MAX_NOTIFICATIONS} are answered)"
    )


class NotificationList(Out):
    """The caller's city's notifications, newest first."""

    items: list[Notification]


def _incident(incident: Incident) -> dict[str, Any]:
    return incident_service.to_contract(incident).model_dump(mode="json")


@bp.get("/incidents")
@api_auth
@operation(query=IncidentQuery, tags=TAGS, HTTP_200=IncidentPage)
def list_incidents(query: IncidentQuery) -> ResponseReturnValue:
    """List incidents, newest first, with filters and pagination."""
    filters = incident_service.IncidentFilter(
        city=query.city,
        level_at_most=int(query.level) if query.level is not None else None,
        category=query.category,
        status=query.status,
        open_only=bool(query.open),
        exercise=query.exercise,
        since=query.since,
    )
    page = incident_service.list_incidents(db.session, filters, page=query.page, per_page=query.per_page)
    return IncidentPage(
        items=[incident_service.to_contract(i) for i in page.items],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
        pages=page.pages,
    ).model_dump(mode="json")


@bp.post("/incidents")
@api_auth
@operation(json=IncidentCreate, tags=TAGS, HTTP_201=(IncidentReport, "Recorded"))
def create_incident(body: IncidentCreate) -> ResponseReturnValue:
    """Record an incident for the caller's city."""
    incident = incident_service.create_incident(db.session, current_actor(), body)
    db.session.commit()
    kick_flows(current_app)
    return (
        _incident(incident),
        201,
        {"Location": url_for("incidents_api.get_incident", incident_id=incident.public_id)},
    )


@bp.get("/incidents/<uuid:incident_id>")
@api_auth
@operation(tags=TAGS, HTTP_200=IncidentReport)
def get_incident(incident_id: uuid.UUID) -> ResponseReturnValue:
    """Return one incident with its reports."""
    internal_id = incident_service.id_for_public_id(db.session, incident_id)
    return _incident(incident_service.get_incident(db.session, internal_id))


@bp.patch("/incidents/<uuid:incident_id>")
@api_auth
@operation(json=IncidentUpdate, tags=TAGS, HTTP_200=(IncidentReport, "The changed incident"))
def update_incident(incident_id: uuid.UUID, body: IncidentUpdate) -> ResponseReturnValue:
    """Change an incident of the caller's city: level, status or affected cities."""
    internal_id = incident_service.id_for_public_id(db.session, incident_id)
    changes = incident_service.IncidentChanges(
        level=body.level,
        status=body.status,
        affected_cities=tuple(body.affected_cities) if body.affected_cities is not None else None,
    )
    incident = incident_service.update_incident(db.session, current_actor(), internal_id, changes)
    db.session.commit()
    kick_flows(current_app)
    return _incident(incident)


@bp.post("/incidents/<uuid:incident_id>/reports")
@api_auth
@operation(
    json=FollowUpCreate,
    tags=TAGS,
    HTTP_201=(IncidentReport, "The incident with the new report"),
    HTTP_409=(ErrorBody, "The incident is closed"),
)
def add_report(incident_id: uuid.UUID, body: FollowUpCreate) -> ResponseReturnValue:
    """Add a follow-up or final report to an incident of the caller's city."""
    internal_id = incident_service.id_for_public_id(db.session, incident_id)
    incident_service.add_report(db.session, current_actor(), internal_id, body)
    db.session.commit()
    return _incident(incident_service.get_incident(db.session, internal_id)), 201


@bp.get("/notifications")
@api_auth
@operation(query=NotificationQuery, tags=TAGS, HTTP_200=NotificationList)
def list_notifications(query: NotificationQuery) -> ResponseReturnValue:
    """List the caller's city's notifications, newest first."""
    actor = current_actor()
    items = (
        notification_service.for_city(
            db.session,
            actor.city_id,
            limit=min(query.limit, MAX_NOTIFICATIONS),
            unread_only=bool(query.unread),
        )
        if actor.city_id is not None
        else []
    )
    notices = [notification_service.to_contract(n) for n in items]
    return NotificationList(items=notices).model_dump(mode="json")


@bp.post("/notifications/<uuid:notification_id>/read")
@api_auth
@operation(tags=TAGS, HTTP_200=(Notification, "Marked as read"))
def read_notification(notification_id: uuid.UUID) -> ResponseReturnValue:
    """Mark a notification of the caller's city as read."""
    internal_id = notification_service.id_for_public_id(db.session, notification_id)
    notification = notification_service.mark_read(db.session, current_actor(), internal_id)
    db.session.commit()
    return notification_service.to_contract(notification).model_dump(mode="json")
