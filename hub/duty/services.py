"""The duty roster and the contact directory: who is on duty now, and CSV in and out.

Shifts follow the 24-hour duty of the seed (24 小时值班和领导带班): the day shift from 08:00 to
20:00 and the night shift from 20:00 to 08:00 the next morning, Asia/Shanghai; a night shift
belongs to the day it starts. A CSV import replaces the rows it names and keeps the others; a
file with any bad row is refused whole, with the row and the reason, so nothing is half-imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from contracts.common import NOT_XML_TEXT
from hub.duty.models import Contact, DutyShift
from hub.kernel import audit, cities
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, InvalidInput
from hub.kernel.models import Role
from hub.kernel.types import DbSession

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY_STARTS, NIGHT_STARTS = time(8), time(20)
SHIFTS = ("day", "night")
KINDS = ("desk", "coordinator", "leader")
ROSTER_COLUMNS = ("date", "shift", "officer", "officer_phone", "leader", "leader_phone")
DIRECTORY_COLUMNS = ("kind", "name", "title", "phone", "mobile")
# What a person may write in the shift and kind columns besides the codes themselves.
SHIFT_WORDS = {"白班": "day", "夜班": "night", "day": "day", "night": "night"}
KIND_WORDS = {"值班室": "desk", "联络员": "coordinator", "领导": "leader", **{k: k for k in KINDS}}
MAX_ROWS = 2000
MAX_TEXT = 64
PHONE = re.compile(r"^[0-9+\-() ]{0,32}$")


def shift_at(now: datetime) -> tuple[date, str]:
    """Return the (day, shift) on duty at an aware instant."""
    local = now.astimezone(SHANGHAI)
    if DAY_STARTS <= local.time() < NIGHT_STARTS:
        return local.date(), "day"
    if local.time() >= NIGHT_STARTS:
        return local.date(), "night"
    return local.date() - timedelta(days=1), "night"


def on_duty(session: DbSession, now: datetime) -> dict[int, DutyShift]:
    """Return the shift on duty at `now` in every city that has one, by city id."""
    day, shift = shift_at(now)
    query = select(DutyShift).where(DutyShift.day == day, DutyShift.shift == shift)
    return {row.city_id: row for row in session.scalars(query)}


def shift_of(session: DbSession, city_id: int, now: datetime) -> DutyShift | None:
    """Return the shift on duty in one city at `now`, if the roster has it."""
    day, shift = shift_at(now)
    query = select(DutyShift).where(
        DutyShift.city_id == city_id, DutyShift.day == day, DutyShift.shift == shift
    )
    return session.scalar(query)


def roster(session: DbSession, city_id: int, start: date, days: int) -> list[DutyShift]:
    """Return a city's shifts from `start` for `days` days, in order."""
    query = (
        select(DutyShift)
        .where(
            DutyShift.city_id == city_id, DutyShift.day >= start, DutyShift.day < start + timedelta(days=days)
        )
        .order_by(DutyShift.day, DutyShift.shift)
    )
    return list(session.scalars(query))


def directory(session: DbSession, city_id: int | None = None) -> list[Contact]:
    """Return the contact directory, of one city or of all, by city then kind then name."""
    query = select(Contact)
    if city_id is not None:
        query = query.where(Contact.city_id == city_id)
    rows = list(session.scalars(query))
    order = {kind: n for n, kind in enumerate(KINDS)}
    return sorted(rows, key=lambda c: (c.city.slug, order.get(c.kind, 9), c.name))


def _require_editor(actor: Actor, rows: list[tuple[int, dict[str, str]]] | None = None) -> int:
    """Return the city the actor keeps the roster of (coordinators, their own city); refuse too many rows."""
    if actor.city_id is None or actor.role not in (Role.COORDINATOR, Role.ADMIN):
        raise Forbidden("only the city's coordinators keep its roster and directory")
    if rows is not None and len(rows) > MAX_ROWS:
        raise InvalidInput(
            f"at most {MAX_ROWS} rows at once", reason="csv_too_long", details={"max": MAX_ROWS}
        )
    return actor.city_id


def _rows(text: str, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Read a CSV with a header naming `columns` (in any order); return (line, row) pairs."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in columns if name not in header]
    if missing:
        raise InvalidInput(
            f"the CSV lacks the columns {', '.join(missing)}",
            reason="csv_columns",
            details={"columns": ", ".join(missing)},
        )
    rows = []
    for row in reader:
        values = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        if any(values.values()):
            rows.append((reader.line_num, values))
        if len(rows) > MAX_ROWS:
            raise InvalidInput(
                f"at most {MAX_ROWS} rows at once", reason="csv_too_long", details={"max": MAX_ROWS}
            )
    return rows


# Why a row is refused: the reason names it for the pages, which say it in the reader's language.
PROBLEMS = {
    "csv_empty": "empty",
    "csv_too_long_text": f"longer than {MAX_TEXT} characters",
    "csv_date": "not a date (YYYY-MM-DD)",
    "csv_shift": "neither day nor night",
    "csv_kind": "neither desk, coordinator nor leader",
    "csv_twice": "named twice in the file",
    "csv_phone": "not a telephone number",
    "csv_no_phone": "a contact needs a telephone or a mobile number",
    "csv_control_character": "holds a control character",
}


def _bad(line: int, column: str, reason: str) -> InvalidInput:
    return InvalidInput(
        f"line {line}, {column}: {PROBLEMS[reason]}", reason=reason, details={"line": line, "column": column}
    )


def _text(line: int, row: dict[str, str], column: str, *, required: bool) -> str:
    value = row.get(column, "")
    if required and not value:
        raise _bad(line, column, "csv_empty")
    if len(value) > MAX_TEXT:
        raise _bad(line, column, "csv_too_long_text")
    if NOT_XML_TEXT.search(value):
        # The same rule as every contract's text (and PostgreSQL cannot store NUL at all).
        raise _bad(line, column, "csv_control_character")
    return value


def _phone(line: int, row: dict[str, str], column: str) -> str:
    value = row.get(column, "")
    if not PHONE.match(value):
        raise _bad(line, column, "csv_phone")
    return value


def import_roster(session: DbSession, actor: Actor, text: str) -> int:
    """Put the shifts of a CSV on the actor's city's roster; return how many rows it held."""
    _require_editor(actor)
    return put_roster(session, actor, _rows(text, ROSTER_COLUMNS))


def put_roster(session: DbSession, actor: Actor, rows: list[tuple[int, dict[str, str]]]) -> int:
    """Put shifts, each (line or item number, row of ROSTER_COLUMNS), on the actor's city's roster."""
    city_id = _require_editor(actor, rows)
    parsed: dict[tuple[date, str], dict[str, str]] = {}
    for line, row in rows:
        try:
            day = date.fromisoformat(row.get("date", ""))
        except ValueError:
            raise _bad(line, "date", "csv_date") from None
        shift = SHIFT_WORDS.get(row.get("shift", "").lower())
        if shift is None:
            raise _bad(line, "shift", "csv_shift")
        if (day, shift) in parsed:
            raise _bad(line, "shift", "csv_twice")
        parsed[(day, shift)] = {
            "officer": _text(line, row, "officer", required=True),
            "officer_phone": _phone(line, row, "officer_phone"),
            "leader": _text(line, row, "leader", required=True),
            "leader_phone": _phone(line, row, "leader_phone"),
        }
    existing: dict[tuple[date, str], DutyShift] = {
        (s.day, s.shift): s
        for s in session.scalars(
            select(DutyShift).where(
                DutyShift.city_id == city_id, DutyShift.day.in_({day for day, _ in parsed})
            )
        )
    }
    for (day, shift), values in parsed.items():
        found = existing.get((day, shift))
        if found is None:
            session.add(DutyShift(city_id=city_id, day=day, shift=shift, **values))
        else:
            for key, value in values.items():
                setattr(found, key, value)
    session.flush()
    days = sorted(day for day, _ in parsed)
    audit.record(
        session,
        actor,
        "duty.roster_imported",
        "city",
        city_id,
        city_id=city_id,
        after={
            "shifts": len(parsed),
            "from": days[0].isoformat() if days else None,
            "to": days[-1].isoformat() if days else None,
        },
    )
    return len(parsed)


def import_directory(session: DbSession, actor: Actor, text: str) -> int:
    """Put the contacts of a CSV in the actor's city's directory; return how many rows it held."""
    _require_editor(actor)
    return put_directory(session, actor, _rows(text, DIRECTORY_COLUMNS))


def put_directory(session: DbSession, actor: Actor, rows: list[tuple[int, dict[str, str]]]) -> int:
    """Put contacts, each (line or item number, row of DIRECTORY_COLUMNS), in the actor's city's directory."""
    city_id = _require_editor(actor, rows)
    parsed: dict[tuple[str, str], dict[str, str]] = {}
    for line, row in rows:
        kind = KIND_WORDS.get(row.get("kind", "").lower())
        if kind is None:
            raise _bad(line, "kind", "csv_kind")
        name = _text(line, row, "name", required=True)
        if (kind, name) in parsed:
            raise _bad(line, "name", "csv_twice")
        phone, mobile = _phone(line, row, "phone"), _phone(line, row, "mobile")
        if not phone and not mobile:
            raise _bad(line, "phone", "csv_no_phone")
        parsed[(kind, name)] = {
            "title": _text(line, row, "title", required=False),
            "phone": phone,
            "mobile": mobile,
        }
    existing: dict[tuple[str, str], Contact] = {
        (c.kind, c.name): c for c in session.scalars(select(Contact).where(Contact.city_id == city_id))
    }
    for (kind, name), values in parsed.items():
        found = existing.get((kind, name))
        if found is None:
            session.add(Contact(city_id=city_id, kind=kind, name=name, **values))
        else:
            for key, value in values.items():
                setattr(found, key, value)
    session.flush()
    audit.record(
        session,
        actor,
        "duty.directory_imported",
        "city",
        city_id,
        city_id=city_id,
        after={"contacts": len(parsed)},
    )
    return len(parsed)


def _csv(columns: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def export_roster(session: DbSession, city_slug: str, start: date, days: int) -> str:
    """Return a city's roster as CSV, in the columns an import reads."""
    city = cities.by_slug(session, city_slug)
    return _csv(
        ROSTER_COLUMNS,
        (
            (s.day.isoformat(), s.shift, s.officer, s.officer_phone, s.leader, s.leader_phone)
            for s in roster(session, city.id, start, days)
        ),
    )


def export_directory(session: DbSession, city_slug: str | None = None) -> str:
    """Return the directory (one city's, or the region's with a city column) as CSV."""
    if city_slug is not None:
        city = cities.by_slug(session, city_slug)
        return _csv(
            DIRECTORY_COLUMNS,
            ((c.kind, c.name, c.title, c.phone, c.mobile) for c in directory(session, city.id)),
        )
    return _csv(
        ("city", *DIRECTORY_COLUMNS),
        ((c.city.slug, c.kind, c.name, c.title, c.phone, c.mobile) for c in directory(session)),
    )
