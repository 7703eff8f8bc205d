"""An incident as a story: everything that happened to it, from every capability, in time order.

Each capability is read through its own service (bulletins, vehicle commands, aid requests,
consultations), and what a city may not see elsewhere (a restricted bulletin, a meeting it is
not part of) it does not see here either. Entries are small frozen records: the page renders
them, the story itself is decided here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy import select

from hub.bulletins import services as bulletins
from hub.consultations import services as consultations
from hub.fleet import areas
from hub.fleet import commands as fleet_commands
from hub.incidents import attachments, services
from hub.incidents.models import Incident, IncidentReport, Notification
from hub.kernel.actors import Actor
from hub.kernel.models import AuditEntry, City
from hub.kernel.types import DbSession
from hub.mutual_aid import services as mutual_aid


@dataclass(frozen=True)
class Recorded:
    """The incident was recorded (接报)."""

    kind: ClassVar[str] = "recorded"
    at: datetime
    city: City
    by: str | None


@dataclass(frozen=True)
class Report:
    """A follow-up or final report (续报/终报)."""

    kind: ClassVar[str] = "report"
    at: datetime
    report: IncidentReport


@dataclass(frozen=True)
class Change:
    """A change of level, status or affected cities (only what changed; a report's text is its own entry)."""

    kind: ClassVar[str] = "change"
    at: datetime
    by: str
    level: tuple[str, str] | None
    status: tuple[str, str] | None
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class NoticeSent:
    """A city was told of the incident or of a change to it."""

    kind: ClassVar[str] = "notice"
    at: datetime
    city: City
    reason: str
    update: bool
    read_at: datetime | None
    duty_officer: str | None = None


@dataclass(frozen=True)
class NoticeRead:
    """A city's desk read a notice (确认已阅)."""

    kind: ClassVar[str] = "notice_read"
    at: datetime
    city: City
    by: str | None


@dataclass(frozen=True)
class BulletinIssued:
    """A bulletin or warning about the incident."""

    kind: ClassVar[str] = "bulletin"
    at: datetime
    public_id: uuid.UUID
    bulletin_kind: str
    title: str
    city: City
    cancelled_at: datetime | None


@dataclass(frozen=True)
class CommandSent:
    """A command sent to a vehicle for the incident, with where it stands now."""

    kind: ClassVar[str] = "command"
    at: datetime
    vehicle_id: int
    vehicle: str
    city: City
    command: str
    state: str
    state_at: datetime
    acked_at: datetime | None


@dataclass(frozen=True)
class AidRequested:
    """A request for help (支援请求) made for the incident."""

    kind: ClassVar[str] = "aid_request"
    at: datetime
    public_id: uuid.UUID
    title: str
    city: City
    status: str


@dataclass(frozen=True)
class MeetingHeld:
    """A consultation (会商) or meeting on the incident."""

    kind: ClassVar[str] = "meeting"
    at: datetime
    public_id: uuid.UUID
    meeting_kind: str
    title: str
    status: str
    starts_at: datetime


@dataclass(frozen=True)
class AreaCrossed:
    """A vehicle entered or left an area watched for the incident."""

    kind: ClassVar[str] = "area"
    at: datetime
    vehicle_id: int
    vehicle: str
    city: City
    entered: bool
    radius_m: float


@dataclass(frozen=True)
class Attached:
    """A photo or document attached to the incident."""

    kind: ClassVar[str] = "attachment"
    at: datetime
    attachment_id: int
    filename: str
    content_type: str
    size: int
    city: City
    by: str | None


Entry = (
    Recorded
    | Report
    | Change
    | NoticeSent
    | NoticeRead
    | BulletinIssued
    | CommandSent
    | AidRequested
    | MeetingHeld
    | AreaCrossed
    | Attached
)


def _pair(value: object) -> tuple[str, str] | None:
    if isinstance(value, list) and len(value) == 2:
        return (str(value[0]), str(value[1]))
    return None


def _slugs(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def story(session: DbSession, actor: Actor, incident: Incident) -> list[Entry]:
    """Return what happened to the incident, as the actor's city may see it, oldest first."""
    entries: list[Entry] = [
        Recorded(
            incident.reported_at,
            incident.reporting_city,
            incident.created_by.display_name if incident.created_by else None,
        )
    ]
    reports = session.scalars(select(IncidentReport).where(IncidentReport.incident_id == incident.id))
    entries += [Report(r.reported_at, r) for r in reports]
    # From the audit trail, which keeps every change whether or not any city had been told yet
    # (the incident's updates exist only once a city was told). Nothing about an incident is
    # audited before it was reported: the time bound lets the index on `at` narrow the search.
    changed = select(AuditEntry).where(
        AuditEntry.at >= incident.reported_at,
        AuditEntry.entity_type == "incident",
        AuditEntry.entity_id == incident.id,
        AuditEntry.action.in_(("incident.updated", "incident.report_added")),
    )
    for entry in session.scalars(changed.order_by(AuditEntry.id)):
        if entry.before is None or entry.after is None:
            continue
        c = services.changes_between(entry.before, entry.after)
        if c:
            entries.append(
                Change(
                    entry.at,
                    entry.actor,
                    _pair(c.get("level")),
                    _pair(c.get("status")),
                    _slugs(c.get("added")),
                    _slugs(c.get("removed")),
                )
            )
    for n in session.scalars(select(Notification).where(Notification.incident_id == incident.id)):
        entries.append(
            NoticeSent(n.created_at, n.city, n.reason, n.update_id is not None, n.read_at, n.duty_officer)
        )
        if n.read_at is not None:
            entries.append(NoticeRead(n.read_at, n.city, n.read_by.display_name if n.read_by else None))
    entries += [
        BulletinIssued(b.issued_at, b.public_id, b.kind, b.title, b.issuing_city, b.cancelled_at)
        for b in bulletins.for_incident(session, actor, incident.id)
    ]
    entries += [
        CommandSent(
            c.issued_at,
            c.vehicle_id,
            c.vehicle.name or c.vehicle.code,
            c.vehicle.city,
            c.kind,
            c.state,
            c.state_at,
            c.acked_at,
        )
        for c in fleet_commands.for_incident(session, incident.id)
    ]
    entries += [
        AidRequested(r.created_at, r.public_id, r.title, r.requesting_city, r.status)
        for r in mutual_aid.requests_for_incident(session, incident.id)
    ]
    entries += [
        MeetingHeld(m.called_at or m.created_at, m.public_id, m.kind, m.title, m.status, m.starts_at)
        for m in consultations.for_incident(session, actor, incident.id)
    ]
    entries += [
        AreaCrossed(e.at, e.vehicle_id, e.vehicle.name, e.vehicle.city, e.entered, e.area.radius_m)
        for e in areas.events_for_incident(session, incident.id)
    ]
    entries += [
        Attached(
            a.uploaded_at,
            a.id,
            a.filename,
            a.content_type,
            a.size,
            a.city,
            a.uploaded_by.display_name if a.uploaded_by else None,
        )
        for a in attachments.for_incident(session, incident.id)
    ]
    # Ties (a report and the status change it caused) keep the order they were added in.
    return sorted(entries, key=lambda e: e.at)
