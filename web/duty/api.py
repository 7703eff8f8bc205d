"""API of the duty roster and the contact directory: who is on duty, the roster, the directory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Literal

from flask import Blueprint
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from contracts.common import XmlChars
from hub.duty import services as duty
from hub.duty.models import Contact, DutyShift
from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.types import utcnow
from web.api.models import Out
from web.api.params import Query, QueryInt
from web.api.spec import operation
from web.auth import api_auth, current_actor

bp = Blueprint("duty_api", __name__, url_prefix="/api/v1")
TAGS = ("duty",)


class ShiftOut(Out):
    """One shift of a city's roster: the officer and the leader on duty (领导带班)."""

    city: str
    date: date
    shift: Literal["day", "night"]
    officer: str
    officer_phone: str
    leader: str
    leader_phone: str


class ShiftList(Out):
    """Shifts, by city or by date."""

    items: list[ShiftOut]


class ContactOut(Out):
    """One entry of a city's contact directory."""

    city: str
    kind: Literal["desk", "coordinator", "leader"]
    name: str
    title: str
    phone: str
    mobile: str


class ContactList(Out):
    """Entries of the contact directory."""

    items: list[ContactOut]


class ImportedOut(Out):
    """How many rows an import put in place."""

    count: int


class ShiftIn(BaseModel):
    """A shift to put on the caller's city's roster (replaces the same day and shift)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: date
    shift: Literal["day", "night"]
    officer: Annotated[str, Field(min_length=1, max_length=64), XmlChars]
    officer_phone: Annotated[str, Field(max_length=32), XmlChars] = ""
    leader: Annotated[str, Field(min_length=1, max_length=64), XmlChars]
    leader_phone: Annotated[str, Field(max_length=32), XmlChars] = ""


class RosterIn(BaseModel):
    """Shifts to put on the caller's city's roster, all or none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: list[ShiftIn] = Field(max_length=duty.MAX_ROWS)


class ContactIn(BaseModel):
    """A contact to put in the caller's city's directory (replaces the same kind and name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["desk", "coordinator", "leader"]
    name: Annotated[str, Field(min_length=1, max_length=64), XmlChars]
    title: Annotated[str, Field(max_length=64), XmlChars] = ""
    phone: Annotated[str, Field(max_length=32), XmlChars] = ""
    mobile: Annotated[str, Field(max_length=32), XmlChars] = ""


class DirectoryIn(BaseModel):
    """Contacts to put in the caller's city's directory, all or none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: list[ContactIn] = Field(max_length=duty.MAX_ROWS)


class RosterQuery(Query):
    """Which roster to list."""

    city: str | None = Field(None, description="city slug (default: the caller's city)")
    start: date | None = Field(None, description="first day (default: the day of the shift on duty now)")
    days: QueryInt = Field(14, ge=1, le=366)


class DirectoryQuery(Query):
    """Whose directory to list."""

    city: str | None = Field(None, description="city slug (default: every city)")


def _shift(row: DutyShift) -> ShiftOut:
    return ShiftOut(
        city=row.city.slug,
        date=row.day,
        shift=row.shift,
        officer=row.officer,
        officer_phone=row.officer_phone,
        leader=row.leader,
        leader_phone=row.leader_phone,
    )


def _contact(row: Contact) -> ContactOut:
    return ContactOut(
        city=row.city.slug, kind=row.kind, name=row.name, title=row.title, phone=row.phone, mobile=row.mobile
    )


@bp.get("/duty/now")
@api_auth
@operation(tags=TAGS, HTTP_200=(ShiftList, "One shift per city that has one"))
def on_duty_now() -> ResponseReturnValue:
    """List who is on duty now in every city (值班员 and 带班领导)."""
    found = duty.on_duty(db.session, utcnow())
    items = sorted(found.values(), key=lambda s: s.city.slug)
    return ShiftList(items=[_shift(s) for s in items]).model_dump(mode="json")


@bp.get("/duty/roster")
@api_auth
@operation(query=RosterQuery, tags=TAGS, HTTP_200=(ShiftList, "In date and shift order"))
def get_roster(query: RosterQuery) -> ResponseReturnValue:
    """List a city's roster for some days."""
    actor = current_actor()
    city_id = city_service.by_slug(db.session, query.city).id if query.city else actor.city_id
    start = query.start or duty.shift_at(utcnow())[0]
    rows = duty.roster(db.session, city_id, start, query.days) if city_id is not None else []
    return ShiftList(items=[_shift(s) for s in rows]).model_dump(mode="json")


def _numbered_rows(items: Sequence[BaseModel]) -> list[tuple[int, dict[str, str]]]:
    """Give API items the shape of CSV rows (numbered from 1, text values) the services check."""
    return [
        (n, {k: str(v) for k, v in item.model_dump(mode="json").items()}) for n, item in enumerate(items, 1)
    ]


@bp.put("/duty/roster")
@api_auth
@operation(json=RosterIn, tags=TAGS, HTTP_200=(ImportedOut, "Put in place"))
def put_roster(body: RosterIn) -> ResponseReturnValue:
    """Put shifts on the caller's city's roster; a bad one refuses them all."""
    count = duty.put_roster(db.session, current_actor(), _numbered_rows(body.items))
    db.session.commit()
    return ImportedOut(count=count).model_dump(mode="json")


@bp.get("/directory")
@api_auth
@operation(query=DirectoryQuery, tags=TAGS, HTTP_200=(ContactList, "By city, kind and name"))
def get_directory(query: DirectoryQuery) -> ResponseReturnValue:
    """List the contact directory of one city or of the region."""
    city_id = city_service.by_slug(db.session, query.city).id if query.city else None
    rows = duty.directory(db.session, city_id)
    return ContactList(items=[_contact(c) for c in rows]).model_dump(mode="json")


@bp.put("/directory")
@api_auth
@operation(json=DirectoryIn, tags=TAGS, HTTP_200=(ImportedOut, "Put in place"))
def put_directory(body: DirectoryIn) -> ResponseReturnValue:
    """Put contacts in the caller's city's directory; a bad one refuses them all."""
    count = duty.put_directory(db.session, current_actor(), _numbered_rows(body.items))
    db.session.commit()
    return ImportedOut(count=count).model_dump(mode="json")
