"""Keep the registry, make requests, and move offers and commitments through their lifecycle.

Every function takes the session and the acting `Actor`, checks, changes, flushes and audits,
and never commits. The rules are `hub.mutual_aid.rules`; the ledger is enforced again by the
database: reserving is one conditional UPDATE whose row count decides, never a read then a
write, and CHECK constraints refuse any count that breaks the invariant. A state change is a
conditional UPDATE on the state it started from, so two people acting on the same commitment at
once cannot both succeed.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError
from sqlalchemy import (
    ColumnElement,
    Executable,
    Float,
    Row,
    Select,
    String,
    Table,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError

from contracts import mutual_aid as contract
from contracts.mqtt import DEFAULT_ROOT, GotoAction
from contracts.mutual_aid import (
    AidPackage,
    AidState,
    Contact,
    EntryStatus,
    GeoPoint,
    RegistryEntry,
    ReportTo,
    RequestLine,
)
from contracts.partner import ResourceKind
from contracts.resource_types import CATALOGUE, Grade, TypeRef, fit_rank, satisfies
from hub.fleet import commands as fleet_commands
from hub.fleet import services as fleet
from hub.kernel import audit, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.kernel.models import City, Reminder, Role
from hub.kernel.types import DbSession, affected_rows, table_of, utcnow
from hub.mutual_aid import rules
from hub.mutual_aid.models import (
    QUANTITY,
    AidAsk,
    AidCommitment,
    AidRequest,
    AidRequestLine,
    AidResource,
    AidResourceCell,
)
from hub.mutual_aid.rules import Action

if TYPE_CHECKING:
    from hub.config import Settings

ZERO = Decimal(0)
DEFAULT_OFFER_VALIDITY = timedelta(hours=6)

# Flow requests, each keyed by the step it carries (`aid:{request}:ring:{n}`, …), so that a
# duplicate trigger finds the request already there and nothing runs twice.
SOURCE = "aid-ask-ring"
REMIND = "aid-remind-ask"
EXPIRE = "aid-expire"
OVERDUE = "aid-overdue-arrival"
# An asked city has this long to answer before the next ring is asked; it is reminded once
# REMIND_BEFORE its deadline. An accepted hold not authorised within HOLD_WINDOW expires and
# its reservation comes back. A dispatched resource not confirmed ARRIVAL_GRACE after its
# expected arrival (needed-by, or dispatch plus the drive at ROAD_KMH) is reported overdue.
ASK_WINDOW = timedelta(minutes=30)
REMIND_BEFORE = timedelta(minutes=10)
HOLD_WINDOW = timedelta(hours=2)
ARRIVAL_GRACE = timedelta(minutes=30)
ROAD_KMH = 50.0
DISPATCH_COMMAND_TTL = timedelta(hours=1)
TIMER = Actor.system("mutual-aid-timer")
_WRITERS = frozenset({Role.COORDINATOR, Role.DUTY_OFFICER})


def _q(quantity: Decimal) -> object:
    """Bind a quantity in the stored scale: arithmetic on the columns loses their type in SQL."""
    return literal(quantity, QUANTITY)


def _city_of(actor: Actor, what: str) -> int:
    """Return the actor's city, or refuse an actor without one or whose role only reads."""
    if actor.city_id is None:
        raise Forbidden(f"only a person or platform of a member city may {what}")
    if actor.role not in _WRITERS:
        raise Forbidden(f"your role may not {what}")
    return actor.city_id


def _entry_snapshot(entry: AidResource) -> dict[str, object]:
    return {
        "external_id": entry.external_id,
        "type_code": entry.type_code,
        "grade": entry.grade,
        "name": entry.name,
        "on_hand": str(entry.on_hand),
        "reserved": str(entry.reserved),
        "deployed": str(entry.deployed),
        "status": entry.status,
        "verified_at": entry.verified_at.isoformat(),
        "verified_by": entry.verified_by,
    }


def _commitment_snapshot(commitment: AidCommitment) -> dict[str, object]:
    return {
        "state": commitment.state,
        "quantity": str(commitment.quantity),
        "start": commitment.start_at.isoformat(),
        "end": commitment.end_at.isoformat(),
        "order_number": commitment.order_number,
        "extension_until": commitment.extension_until.isoformat() if commitment.extension_until else None,
        "dispatched": str(commitment.dispatched),
        "returned": str(commitment.returned),
        "consumed": str(commitment.consumed),
        "lost": str(commitment.lost),
    }


# The registry ------------------------------------------------------------------------------------


def register_entry(session: DbSession, actor: Actor, data: RegistryEntry) -> AidResource:
    """Add or update an entry of the actor's own city, keyed by the owner's id for it.

    Lowering what is on hand below what is reserved and deployed is refused (a 409 naming both),
    checked in the UPDATE itself.
    """
    city_id = _city_of(actor, "keep a registry")
    owner = session.scalar(select(City).where(City.slug == data.owner_city))
    if owner is None:
        raise NotFound(f"no city {data.owner_city!r}")
    if owner.id != city_id:
        raise Forbidden("you may keep the registry of your own city only")
    entry = session.scalar(
        select(AidResource).where(AidResource.owner_city_id == city_id, AidResource.external_id == data.id)
    )
    fields = _entry_fields(data)
    if entry is None:
        entry = AidResource(owner_city_id=city_id, external_id=data.id, on_hand=data.quantity, **fields)
        session.add(entry)
        session.flush()
        audit.record(
            session, actor, "aid_resource.registered", "aid_resource", entry.id, after=_entry_snapshot(entry)
        )
        return entry
    before = _entry_snapshot(entry)
    _set_on_hand(session, entry, data.quantity)
    for name, value in fields.items():
        setattr(entry, name, value)
    entry.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "aid_resource.updated",
        "aid_resource",
        entry.id,
        before=before,
        after=_entry_snapshot(entry),
    )
    return entry


def _entry_fields(data: RegistryEntry) -> dict[str, object]:
    package = data.package
    return {
        "type_code": data.type_code,
        "kind": data.kind.value,
        "grade": int(data.grade) if data.grade is not None else None,
        "bookable": CATALOGUE[data.type_code].bookable,
        "name": data.name,
        "unit": data.unit,
        "lat": data.location.lat,
        "lon": data.location.lon,
        "place": data.place,
        "status": data.status.value,
        "out_of_service_reason": data.out_of_service_reason.value if data.out_of_service_reason else None,
        "contact_name": data.contact.name,
        "contact_phone": data.contact.phone,
        "contact_role": data.contact.role,
        "package_personnel": package.personnel if package else None,
        "package_equipment": list(package.equipment) if package else None,
        "package_daily_rate": package.daily_rate if package else None,
        "package_self_sufficiency_hours": package.self_sufficiency_hours if package else None,
        "package_mobilise_minutes": package.mobilise_minutes if package else None,
        "verified_at": data.verified_at,
        "verified_by": data.verified_by,
    }


def set_on_hand(session: DbSession, entry: AidResource, on_hand: Decimal) -> None:
    """Set what is on hand unless it would fall below what is held (a 409), decided by the UPDATE."""
    _set_on_hand(session, entry, on_hand)


def _set_on_hand(session: DbSession, entry: AidResource, on_hand: Decimal) -> None:
    """Set what is on hand unless it would fall below what is held, decided by the UPDATE."""
    if on_hand == entry.on_hand:
        return
    table = table_of(AidResource)
    result = session.execute(
        update(table)
        .where(table.c.id == entry.id, table.c.reserved + table.c.deployed <= _q(on_hand))
        .values(on_hand=on_hand)
    )
    session.refresh(entry, ["on_hand", "reserved", "deployed"])
    if affected_rows(result) != 1:
        raise Conflict(
            f"cannot set on hand to {on_hand}: {entry.reserved} reserved and {entry.deployed} deployed",
            details={"reserved": str(entry.reserved), "deployed": str(entry.deployed)},
        )


def get_entry(session: DbSession, entry_id: int) -> AidResource:
    """Return one registry entry, or fail."""
    entry = session.get(AidResource, entry_id)
    if entry is None:
        raise NotFound(f"no registry entry {entry_id}")
    return entry


# Requests ----------------------------------------------------------------------------------------


def entries_on_map(session: DbSession, limit: int = 5_000) -> list[AidResource]:
    """Return the registry's entries in service (each has its place), for the region's map."""
    query = select(AidResource).where(AidResource.status != "withdrawn").order_by(AidResource.id).limit(limit)
    return list(session.scalars(query))


def open_requests_on_map(session: DbSession) -> list[AidRequest]:
    """Return the live requests still open, with their lines (where each is to report), for the map."""
    query = select(AidRequest).where(AidRequest.status == "open", AidRequest.exercise.is_(False))
    return list(session.scalars(query.order_by(AidRequest.id)))


def requests_for_incident(session: DbSession, incident_id: int) -> list[AidRequest]:
    """Return the requests for help made for an incident, oldest first."""
    query = select(AidRequest).where(AidRequest.incident_id == incident_id)
    return list(session.scalars(query.order_by(AidRequest.created_at, AidRequest.id)))


def create_request(
    session: DbSession,
    actor: Actor,
    *,
    title: str,
    lines: Sequence[RequestLine],
    contact: Contact,
    incident_id: int | None = None,
    exercise: bool = False,
) -> AidRequest:
    """Record a request for help from the actor's own city."""
    city_id = _city_of(actor, "ask for help")
    if not lines:
        raise InvalidInput("a request has at least one line")
    if len({line.line_id for line in lines}) != len(lines):
        raise InvalidInput("two lines share an id")
    request = AidRequest(
        requesting_city_id=city_id,
        incident_id=incident_id,
        title=title,
        contact_name=contact.name,
        contact_phone=contact.phone,
        contact_role=contact.role,
        exercise=exercise,
        created_by_id=actor.user_id,
        lines=[
            AidRequestLine(
                line_id=line.line_id,
                type_code=line.type_code,
                min_grade=int(line.min_grade) if line.min_grade is not None else None,
                quantity=line.quantity,
                unit=line.unit,
                needed_by=line.needed_by,
                duration_hours=line.duration_hours,
                report_to_place=line.report_to.place,
                report_to_lat=line.report_to.point.lat,
                report_to_lon=line.report_to.point.lon,
                note=line.note,
            )
            for line in lines
        ],
    )
    session.add(request)
    session.flush()
    flow_requests.enqueue(
        session, SOURCE, key=ring_key(request.id, 0), parameters={"aid_request_id": request.id, "ring": 0}
    )
    audit.record(
        session,
        actor,
        "aid_request.created",
        "aid_request",
        request.id,
        after={
            "title": title,
            "exercise": exercise,
            "lines": [
                {"line_id": ln.line_id, "type": ln.type_code, "quantity": str(ln.quantity)} for ln in lines
            ],
        },
    )
    return request


def get_line(session: DbSession, line_id: int) -> AidRequestLine:
    """Return one request line, or fail."""
    line = session.get(AidRequestLine, line_id)
    if line is None:
        raise NotFound(f"no request line {line_id}")
    return line


def _line_type(line: AidRequestLine) -> TypeRef:
    return TypeRef(line.type_code, Grade(line.min_grade) if line.min_grade is not None else None)


def _entry_type(entry: AidResource) -> TypeRef:
    return TypeRef(entry.type_code, Grade(entry.grade) if entry.grade is not None else None)


_RADIANS = math.pi / 180


def _distance_km(lat: float, lon: float, table: Table, dialect: str) -> ColumnElement[float]:
    """Return `rules.haversine_km` from (lat, lon) to each row, in SQL, term for term.

    The constants are computed in Python and the functions are the C library's on both sides,
    so the database orders rows by the distance Python computes for them.
    """
    p1 = math.radians(lat)
    p2 = table.c.lat * literal(_RADIANS)
    dp = p2 - literal(p1)
    dl = (table.c.lon - literal(lon)) * literal(_RADIANS)
    # x / 2 and x * 0.5 are the same double; a product keeps the SQL free of a cast.
    a = func.power(func.sin(dp * 0.5), 2) + literal(math.cos(p1)) * func.cos(p2) * func.power(
        func.sin(dl * 0.5), 2
    )
    # min(1.0, x) as Python's, evaluating x once: SQLite's min() of two values, PostgreSQL's least().
    capped = (func.least if dialect == "postgresql" else func.min)(literal(1.0), func.sqrt(a))
    return literal(2 * rules.EARTH_RADIUS_KM) * func.asin(capped)


def _id_text(session: DbSession, table: Table) -> ColumnElement[str]:
    """Return the entry id as text in byte order: `rules.Ranked.key` breaks ties on the id as a string."""
    text = cast(table.c.id, String)
    return text.collate("C") if session.get_bind().dialect.name == "postgresql" else text


NEAR_TIE = 1e-12
"""How far below a group's largest dot product an entry may lie and still be fetched.

Python's haversine decides the order; the database's dot products (computed apart, rounded
apart) may differ from it in the last bits only, some 1e-16, so fetching what lies within 1e-12
of the largest brings every entry Python may find nearest, ties included (a few metres at most)."""

SURE_KM = 1e-3
"""The margin of every decision sourcing takes on a distance from a dot product (`rules.km_of_dot`
is within 1e-4 km of the haversine): a cell that may hold an entry this much farther is read."""

FIRST_REACH_KM = 2.0
"""The first read of each city takes the cells within this of its nearest cell (and of its nearest
cell of the best fit); the next takes the cells that may still hold something nearer than what
the first found. Measured on the benchmark's registry: 0 to 5 km cost the same, 10 km more."""


class _Unit(NamedTuple):
    """The entries of one (type, city, grade) in one grid cell, with their fit and least distance
    from the place of one line (its index in the lines ranked together)."""

    line: int
    type_code: str
    city: int
    grade: int | None
    cell: int
    fit: int
    least_km: float


# The statements of `_nearest_of_groups` are built once per shape and kept (`functools.cache`),
# everything that changes from call to call a named parameter: building a statement and its cache
# key costs more in Python than the database takes to answer it. The freshness limit is
# :stale_before.


def _stale() -> ColumnElement[int]:
    table = table_of(AidResource)
    return case((table.c.verified_at < bindparam("stale_before", type_=table.c.verified_at.type), 1), else_=0)


def _left() -> ColumnElement[bool]:
    table = table_of(AidResource)
    return table.c.on_hand - table.c.reserved - table.c.deployed > _q(ZERO)


@functools.cache
def _cells_held() -> Executable:
    """Return per (type, city, grade) its grid cells, as text, for the lines' types (:codes) in other
    cities than :requester, of a grade in [:min_grade, :max_grade] (0 stands for an ungraded entry).

    A few rows of a few hundred cells each: reading each cell as a row of its own costs Python
    more than the rest of the ranking.
    """
    cells = table_of(AidResourceCell)
    return (
        select(
            cells.c.type_code,
            cells.c.owner_city_id,
            cells.c.grade,
            func.aggregate_strings(cast(cells.c.cell, String), ","),
        )
        .where(
            cells.c.type_code.in_(bindparam("codes", expanding=True)),
            cells.c.owner_city_id != bindparam("requester"),
            cells.c.grade.between(bindparam("min_grade"), bindparam("max_grade")),
        )
        .group_by(cells.c.type_code, cells.c.owner_city_id, cells.c.grade)
    )


_Query = Select[*tuple[Any, ...]]
_UNIT_TYPES = ("VARCHAR(64)", "VARCHAR(16)", "INTEGER", "INTEGER", "INTEGER")


def _in_units(
    name: str,
    graded: int,
    ungraded: int,
    extra_types: tuple[str, ...],
    query: Callable[[Sequence[Any]], _Query],
    arrays: bool,
) -> list[_Query]:
    """Return `query` over the available entries of rows (type, status, city, grade, cell, …).

    The rows are a VALUES list whose graded rows' parameters are named :<name>g<i>_<k>, the
    ungraded ones' :<name>n<i>_<k>; or, with `arrays` (PostgreSQL), one array a column,
    :<name>g_<k> and :<name>n_<k>, unnested: a statement of one shape whatever the count, which
    PostgreSQL parses and plans in a fraction of the time a long VALUES list takes. Each row is
    an equality seek in `ix_aid_resources_sourcing`. The status comes with each row
    rather than as a constant: a constant would let SQLite, which has no statistics, seek the
    entries by the index on the status alone and look each one up in the rows. A NULL grade is
    no equality that an index can seek (IS NOT DISTINCT FROM is not one on PostgreSQL), so graded
    and ungraded rows are joined apart and the caller unites the queries.
    """
    table = table_of(AidResource)
    types = (*_UNIT_TYPES, *extra_types)
    queries: list[_Query] = []
    for suffix, count in (("g", graded), ("n", ungraded)):
        if not count:
            continue
        names = ", ".join(f"column{k + 1}" for k in range(len(types)))
        if arrays:
            # Only the code's own names and types go into this text; the rows are parameters.
            unnested = ", ".join(f"CAST(:{name}{suffix}_{k} AS {t}[])" for k, t in enumerate(types))
            rows_sql = " ".join(("SELECT * FROM", f"unnest({unnested}) AS {name}{suffix}_rows({names})"))
        else:
            rows_sql = "VALUES " + ", ".join(
                "(" + ", ".join(f"CAST(:{name}{suffix}{i}_{k} AS {t})" for k, t in enumerate(types)) + ")"
                for i in range(count)
            )
        values = (
            text(rows_sql).columns(*(column(f"column{k + 1}") for k in range(len(types)))).cte(name + suffix)
        )
        cols = [values.c[f"column{k + 1}"] for k in range(len(types))]
        on = (
            (table.c.type_code == cols[0])
            & (table.c.status == cols[1])
            & (table.c.owner_city_id == cols[2])
            & ((table.c.grade == cols[3]) if suffix == "g" else table.c.grade.is_(None))
            & (table.c.cell == cols[4])
        )
        queries.append(query(cols[5:]).select_from(table.join(values, on)))
    return queries


def _in_units_params(
    name: str, rows: Sequence[tuple[object, ...]], arrays: bool
) -> tuple[int, int, dict[str, object]]:
    """Return the shape (how many rows are graded and ungraded; with `arrays`, whether there are
    any) and the parameters of (type, city, grade, cell, …) rows for `_in_units`."""
    params: dict[str, object] = {}
    counts = {"g": 0, "n": 0}
    for row in rows:
        suffix = "g" if row[2] is not None else "n"
        i = counts[suffix]
        counts[suffix] = i + 1
        for k, value in enumerate((row[0], EntryStatus.AVAILABLE.value, *row[1:])):
            if arrays:
                column_values = params.setdefault(f"{name}{suffix}_{k}", [])
                assert isinstance(column_values, list)
                column_values.append(value)
            else:
                params[f"{name}{suffix}{i}_{k}"] = value
    if arrays:
        return min(1, counts["g"]), min(1, counts["n"]), params
    return counts["g"], counts["n"], params


@functools.lru_cache(maxsize=512)
def _nearest_in_cells(graded: int, ungraded: int, arrays: bool) -> Executable:
    """Return, per line, (type, city, grade) and freshness, the entries of the cells nearest the line's place.

    Each VALUES row names a cell, the line (its index) and the unit vector of the line's place.
    Returned: the entries whose dot product with the place comes within :near_tie of the
    largest of their group in these cells (ties and rounding included), with the line, the dot
    product, the freshness and their city's slug.
    """
    table = table_of(AidResource)
    stale = _stale()

    def nearest(extra: Sequence[Any]) -> _Query:
        line, px, py, pz = extra
        dot = table.c.ux * px + table.c.uy * py + table.c.uz * pz
        group = (line, table.c.type_code, table.c.owner_city_id, table.c.grade, stale)
        return select(
            *_candidate_columns(table),
            line.label("line"),
            dot.label("dot"),
            stale.label("stale"),
            func.max(dot).over(partition_by=group).label("top"),
        ).where(_left())

    queries = _in_units("cells", graded, ungraded, ("INTEGER", "FLOAT", "FLOAT", "FLOAT"), nearest, arrays)
    found = (union_all(*queries) if len(queries) > 1 else queries[0]).subquery()
    cities = table_of(City)
    return (
        select(found, cities.c.slug)
        .join(cities, cities.c.id == found.c.owner_city_id)
        .where(found.c.dot >= found.c.top - bindparam("near_tie", type_=Float()))
    )


_cell_bounds = functools.lru_cache(maxsize=64)(rules.km_to_cells)
"""The bounds of the grid cells from a place, kept for the places ranked lately: the lines of a
request share their place, and a request is ranked again as its rings widen."""


def _open_units(
    units: Sequence[_Unit], read: set[_Unit], classes: dict[tuple[int, int], float]
) -> list[_Unit]:
    """Return the cells of one city not read yet that may still hold its best or its nearest entry.

    `classes` holds, per (fit, stale) found so far, the distance of its nearest entry. A cell
    matters if it may hold an entry as near as the nearest found, one of a better fit than the
    best class found, or, of that fit, a fresh one when only stale ones were found or one as near
    as the best class's nearest. A cell's fit is known; its freshness is not.
    """
    unread = [u for u in units if u not in read]
    if not classes:
        return unread
    nearest = min(classes.values())
    fit, stale = min(classes)
    best = classes[(fit, stale)]
    return [
        u
        for u in unread
        if u.least_km <= nearest + SURE_KM
        or u.fit < fit
        or (u.fit == fit and (stale == 1 or u.least_km <= best + SURE_KM))
    ]


def _nearest_of_groups(
    session: DbSession, lines: Sequence[AidRequestLine], stale_before: datetime
) -> list[list[Row[Any]]]:
    """Return, for each line of one request, each city's best and nearest entries, ties included, and more.

    The registry's grid (`AidResourceCell`) says in which cells each (type, city, grade) has
    entries; each cell's least distance from a line's place bounds the distance of everything in
    it. Per line and city the cells are read nearest first, through `ix_aid_resources_sourcing`
    alone, all lines in one statement a read: a read returns, per line, (type, city, grade) and
    freshness, the entries of the cells asked whose dot product of the stored unit vectors with
    the place's comes within `NEAR_TIE` of the group's largest there (`_nearest_in_cells`); the
    reads go on while a cell not read may still hold the city's nearest entry for a line or an
    entry of its best (fit, freshness) class (`_open_units`). Return the rows, with their city's
    slug, that are still within `NEAR_TIE` of their group's largest over all the reads.
    """
    wanted = [_line_type(line) for line in lines]
    # Core statements on the session's connection: the ORM's execution path costs more than they do.
    connection = session.connection()
    held = connection.execute(
        _cells_held(),
        {
            "codes": sorted({code for w in wanted for code in _codes(w)}),
            "requester": lines[0].request.requesting_city_id,
            "min_grade": 0,
            "max_grade": len(Grade),
        },
    ).all()
    fits: list[dict[tuple[str, int], int]] = []
    by_city: dict[tuple[int, int], list[_Unit]] = {}
    places: list[tuple[float, float, float]] = []
    for index, (line, want) in enumerate(zip(lines, wanted, strict=True)):
        bound = _cell_bounds(line.report_to_lat, line.report_to_lon)
        places.append(rules.unit_vector(line.report_to_lat, line.report_to_lon))
        kinds: dict[tuple[str, int], int] = {}
        fits.append(kinds)
        for code, city, grade_key, listed in held:
            kind = TypeRef(code, Grade(grade_key) if grade_key else None)
            if not satisfies(kind, want):
                continue
            fit = kinds[(code, grade_key)] = fit_rank(kind, want)
            grade = grade_key or None
            by_city.setdefault((index, city), []).extend(
                _Unit(index, code, city, grade, cell, fit, bound(cell))
                for cell in map(int, listed.split(","))
            )

    todo: list[_Unit] = []
    for units in by_city.values():
        nearest = min(u.least_km for u in units)
        top = min(u.fit for u in units)
        nearest_top = min(u.least_km for u in units if u.fit == top)
        todo += [
            u
            for u in units
            if u.least_km <= nearest + FIRST_REACH_KM
            or (u.fit == top and u.least_km <= nearest_top + FIRST_REACH_KM)
        ]
    read: set[_Unit] = set()
    largest: dict[tuple[int, str, int, int | None, int], float] = {}
    rows: list[Row[Any]] = []
    fixed = {"stale_before": stale_before, "near_tie": NEAR_TIE}
    arrays = connection.dialect.name == "postgresql"
    while todo:
        graded, ungraded, params = _in_units_params(
            "cells", [(u.type_code, u.city, u.grade, u.cell, u.line, *places[u.line]) for u in todo], arrays
        )
        for row in connection.execute(_nearest_in_cells(graded, ungraded, arrays), params | fixed):
            group = (row.line, row.type_code, row.owner_city_id, row.grade, row.stale)
            if row.dot > largest.get(group, -math.inf):
                largest[group] = row.dot
            rows.append(row)
        read.update(todo)
        classes: dict[tuple[int, int], dict[tuple[int, int], float]] = {}
        for (index, code, city, grade, is_stale), value in largest.items():
            of_city = classes.setdefault((index, city), {})
            key = (fits[index][(code, grade or 0)], is_stale)
            of_city[key] = min(of_city.get(key, math.inf), rules.km_of_dot(value))
        todo = [u for key, units in by_city.items() for u in _open_units(units, read, classes.get(key, {}))]
    found: list[list[Row[Any]]] = [[] for _ in lines]
    for row in rows:
        # A later read may have found an entry nearer than an earlier read's nearest.
        if row.dot >= largest[(row.line, row.type_code, row.owner_city_id, row.grade, row.stale)] - NEAR_TIE:
            found[row.line].append(row)
    return found


def _candidate_columns(table: Table) -> list[ColumnElement[Any]]:
    return [
        table.c.id,
        table.c.owner_city_id,
        table.c.type_code,
        table.c.grade,
        table.c.on_hand,
        table.c.reserved,
        table.c.deployed,
        table.c.lat,
        table.c.lon,
        table.c.verified_at,
    ]


def _codes(wanted: TypeRef) -> list[str]:
    """Return the line's type and the types that stand in for it."""
    return [
        code for code, row in CATALOGUE.items() if code == wanted.code or wanted.code in row.stands_in_for
    ]


def rank_candidates(
    session: DbSession,
    line_id: int,
    *,
    fresh_for: timedelta,
    now: datetime | None = None,
    per_city: int | None = rules.SHORTLIST_PER_CITY,
) -> list[rules.Ranked]:
    """Return the other cities' available entries that may fill a line, best first.

    The result is `rules.rank_candidates` over the whole registry, cut to
    `rules.shortlist(…, per_city)` (None: every candidate). The database does the filtering (the
    line's type or a type that stands in for it, grade, status, what is left, not the requesting
    city) and, with `per_city`, the cut: it sends only a superset of each city's first
    `per_city` and nearest entries (`_nearest_of_groups` for one a city), as plain columns.
    Python ranks those few exactly.
    """
    line = get_line(session, line_id)
    now = now or utcnow()
    wanted = _line_type(line)
    table = table_of(AidResource)
    fit = case(
        (table.c.type_code != wanted.code, 2),
        *([(table.c.grade < int(wanted.grade), 1)] if wanted.grade is not None else []),
        else_=0,
    )
    stale = case((table.c.verified_at < now - fresh_for, 1), else_=0)
    columns = _candidate_columns(table)
    conditions = [
        table.c.owner_city_id != line.request.requesting_city_id,
        table.c.type_code.in_(_codes(wanted)),
        table.c.status == EntryStatus.AVAILABLE.value,
        _left(),
    ]
    if wanted.grade is not None:
        conditions += [table.c.grade.is_not(None), table.c.grade <= int(wanted.grade)]
    rows: Sequence[Row[Any]]
    if per_city == 1:
        (rows,) = _nearest_of_groups(session, [line], now - fresh_for)
    elif per_city is None:
        found = select(*columns).where(*conditions).subquery()
        rows = session.execute(select(found, City.slug).join(City, City.id == found.c.owner_city_id)).all()
    else:
        distance = _distance_km(
            line.report_to_lat, line.report_to_lon, table, session.get_bind().dialect.name
        )
        place = (
            func.row_number()
            .over(
                partition_by=(table.c.owner_city_id, fit, stale),
                order_by=(distance, _id_text(session, table)),
            )
            .label("place")
        )
        ranked = select(*columns, place).where(*conditions).subquery()
        found = select(*(ranked.c[c.name] for c in columns)).where(ranked.c.place <= per_city).subquery()
        rows = session.execute(select(found, City.slug).join(City, City.id == found.c.owner_city_id)).all()
    return _ranked(line, rows, now=now, fresh_for=fresh_for, per_city=per_city)


def _ranked(
    line: AidRequestLine,
    rows: Sequence[Row[Any]],
    *,
    now: datetime,
    fresh_for: timedelta,
    per_city: int | None,
) -> list[rules.Ranked]:
    """Rank the entries the database sent for a line by the plain rule, and cut the ranking."""
    wanted = _line_type(line)
    candidates = []
    for row in rows:
        kind = TypeRef(row.type_code, Grade(row.grade) if row.grade is not None else None)
        if satisfies(kind, wanted):
            candidates.append(
                rules.Candidate(
                    resource_id=str(row.id),
                    owner_city=row.slug,
                    type=kind,
                    available=row.on_hand - row.reserved - row.deployed,
                    lat=row.lat,
                    lon=row.lon,
                    verified_at=row.verified_at,
                )
            )
    ranked_all = rules.rank_candidates(
        wanted,
        (line.report_to_lat, line.report_to_lon),
        candidates,
        now=now,
        requesting_city=line.request.requesting_city.slug,
        fresh_for=fresh_for,
    )
    return ranked_all if per_city is None else rules.shortlist(ranked_all, per_city)


# Offers and commitments --------------------------------------------------------------------------


def make_offer(
    session: DbSession,
    actor: Actor,
    line_id: int,
    resource_id: int,
    quantity: Decimal,
    *,
    estimated_cost: Decimal | None = None,
    valid_for: timedelta = DEFAULT_OFFER_VALIDITY,
) -> AidCommitment:
    """Offer an entry of the actor's own city for a line of another city's request.

    An offer holds nothing: the quantity is reserved when the requester accepts it.
    """
    city_id = _city_of(actor, "offer help")
    line = get_line(session, line_id)
    entry = get_entry(session, resource_id)
    if entry.owner_city_id != city_id:
        raise Forbidden("you may offer your own city's resources only")
    if line.request.requesting_city_id == city_id:
        raise InvalidInput("a city does not offer help to itself", reason="offer_to_self")
    if line.request.status != "open":
        raise Conflict(f"the request is {line.request.status}", reason="aid_request_not_open")
    if entry.status != "available":
        raise Conflict(f"the entry is {entry.status}", reason="aid_entry_not_available")
    if not satisfies(_entry_type(entry), _line_type(line)):
        raise InvalidInput(f"{entry.type_code} does not fill a line asking for {line.type_code}")
    if quantity <= 0:
        raise InvalidInput("an offer is for a positive quantity", reason="quantity_not_positive")
    if entry.bookable and quantity != 1:
        raise InvalidInput("a team, expert or vehicle is offered as one unit")
    if not line.request.exercise and quantity > entry.available:
        raise Conflict(
            f"offered {quantity}, but only {entry.available} is available",
            details={"available": str(entry.available)},
        )
    now = utcnow()
    if estimated_cost is None:
        days = Decimal(line.duration_hours) / 24
        rate = entry.package_daily_rate or ZERO
        estimated_cost = (rate * days).quantize(Decimal("0.01"))
    offer = AidCommitment(
        request_id=line.request_id,
        line_id=line.id,
        resource_id=entry.id,
        owner_city_id=city_id,
        requesting_city_id=line.request.requesting_city_id,
        state=AidState.OFFERED.value,
        quantity=quantity,
        start_at=line.needed_by,
        end_at=line.needed_by + timedelta(hours=line.duration_hours),
        estimated_cost=estimated_cost,
        exercise=line.request.exercise,
        bookable=entry.bookable,
        offered_at=now,
        valid_until=now + valid_for,
        updated_at=now,
    )
    session.add(offer)
    session.flush()
    _answer_ask(session, line.request_id, city_id, "offered", now)
    audit.record(
        session,
        actor,
        "aid_commitment.offered",
        "aid_commitment",
        offer.id,
        after=_commitment_snapshot(offer),
    )
    return offer


def get_commitment(session: DbSession, commitment_id: int) -> AidCommitment:
    """Return one offer or commitment, or fail."""
    commitment = session.get(AidCommitment, commitment_id)
    if commitment is None:
        raise NotFound(f"no offer or commitment {commitment_id}")
    return commitment


def _role(actor: Actor, commitment: AidCommitment, what: str) -> rules.Role:
    """Return the side the actor takes in a commitment, or refuse a city that is neither."""
    if actor.kind == "system" and actor.city_id is None:
        return rules.Role.SYSTEM
    city_id = _city_of(actor, what)
    if city_id == commitment.owner_city_id:
        return rules.Role.OWNER
    if city_id == commitment.requesting_city_id:
        return rules.Role.REQUESTER
    raise Forbidden("only the owning and the requesting city act on a commitment")


def role_in(actor: Actor, commitment: AidCommitment, what: str) -> rules.Role:
    """Return the side the actor takes in a commitment (the owner, the requester or the timer)."""
    return _role(actor, commitment, what)


def _next(actor: Actor, commitment: AidCommitment, action: Action) -> tuple[AidState, AidState]:
    """Return (from, to) for `action` by the actor, refused by the rules as a 403 or a 409."""
    frm = AidState(commitment.state)
    role = _role(actor, commitment, action.value)
    try:
        to = rules.next_state(frm, action, role)
        rules.check_transition(frm, to)
    except rules.NotYourMove as error:
        raise Forbidden(str(error)) from None
    except rules.IllegalTransition as error:
        raise Conflict(str(error), reason="aid_illegal_step") from None
    return frm, to


def _move(
    session: DbSession, commitment: AidCommitment, frm: AidState, to: AidState, **values: object
) -> None:
    """Set the new state (and `values`) only if the commitment is still in `frm`, else a 409."""
    table = table_of(AidCommitment)
    result = session.execute(
        update(table)
        .where(table.c.id == commitment.id, table.c.state == frm.value)
        .values(state=to.value, updated_at=utcnow(), **values)
    )
    if affected_rows(result) != 1:
        session.refresh(commitment)
        raise Conflict(
            f"the commitment changed meanwhile: it is now {commitment.state}", reason="aid_changed"
        )
    session.refresh(commitment)


def _reserve(session: DbSession, entry_id: int, quantity: Decimal) -> None:
    """Reserve `quantity` of an entry in one conditional UPDATE; 0 rows means not enough is left."""
    table = table_of(AidResource)
    result = session.execute(
        update(table)
        .where(table.c.id == entry_id, table.c.on_hand - table.c.reserved - table.c.deployed >= _q(quantity))
        .values(reserved=table.c.reserved + _q(quantity))
    )
    if affected_rows(result) != 1:
        on_hand, reserved, deployed = session.execute(
            select(table.c.on_hand, table.c.reserved, table.c.deployed).where(table.c.id == entry_id)
        ).one()
        available = on_hand - reserved - deployed
        raise Conflict(
            f"asked for {quantity}, but only {available} is available",
            details={"asked": str(quantity), "available": str(available)},
            reason="aid_over_committed",
        )
    _expire_entry(session, entry_id)


def _expire_entry(session: DbSession, entry_id: int) -> None:
    """Forget an entry's loaded counts after an UPDATE that changed them behind the ORM's back."""
    entry = session.identity_map.get(session.identity_key(AidResource, entry_id))
    if entry is not None:
        session.expire(entry, ["on_hand", "reserved", "deployed"])


def _ledger(session: DbSession, entry_id: int, **changes: Decimal) -> None:
    """Apply relative changes to an entry's counts; the CHECK constraints refuse a broken ledger."""
    table = table_of(AidResource)
    values = {name: table.c[name] + _q(delta) for name, delta in changes.items()}
    try:
        session.execute(update(table).where(table.c.id == entry_id).values(**values))
    except IntegrityError as error:
        raise Conflict(f"the change would break the ledger of entry {entry_id}") from error
    _expire_entry(session, entry_id)


def _check_no_overlap(session: DbSession, commitment: AidCommitment, end: datetime | None = None) -> None:
    """Refuse a live real booking of the same bookable entry whose window overlaps this one.

    Runs after the entry's row was written in the same transaction, so every other booking of
    the entry waits for this transaction (the row lock on PostgreSQL, the write lock on SQLite);
    PostgreSQL's exclusion constraint refuses the same again.
    """
    end = end or commitment.end_at
    other = session.scalar(
        select(AidCommitment).where(
            AidCommitment.resource_id == commitment.resource_id,
            AidCommitment.id != commitment.id,
            AidCommitment.exercise.is_(False),
            AidCommitment.state.in_([s.value for s in rules.BOOKED_STATES]),
            AidCommitment.start_at < end,
            AidCommitment.end_at > commitment.start_at,
        )
    )
    if other is not None:
        raise Conflict(
            f"the entry is already booked from {other.start_at.isoformat()} to {other.end_at.isoformat()}",
            details={"commitment": other.id},
            reason="aid_double_booked",
        )


def _act(
    session: DbSession, actor: Actor, commitment_id: int, action: Action, **values: object
) -> tuple[AidCommitment, dict[str, object]]:
    commitment = get_commitment(session, commitment_id)
    frm, to = _next(actor, commitment, action)
    before = _commitment_snapshot(commitment)
    _move(session, commitment, frm, to, **values)
    return commitment, before


def _audit(
    session: DbSession, actor: Actor, commitment: AidCommitment, action: Action, before: dict[str, object]
) -> None:
    session.flush()
    audit.record(
        session,
        actor,
        f"aid_commitment.{action.value}",
        "aid_commitment",
        commitment.id,
        before=before,
        after=_commitment_snapshot(commitment),
    )


def accept(session: DbSession, actor: Actor, commitment_id: int) -> AidCommitment:
    """Accept an offer for the requesting city, reserving its quantity (a 409 says what is left)."""
    commitment = get_commitment(session, commitment_id)
    frm, to = _next(actor, commitment, Action.ACCEPT)
    line = commitment.line
    filled = session.scalar(
        select(func.coalesce(func.sum(AidCommitment.quantity), 0)).where(
            AidCommitment.line_id == line.id,
            AidCommitment.state.in_([s.value for s in rules.BOOKED_STATES]),
        )
    )
    try:
        rules.check_line_fill(line.quantity, [filled or ZERO, commitment.quantity])
    except rules.OverCommitted as error:
        raise Conflict(
            f"the line asks for {line.quantity}; accepting would commit {error.asked}",
            details={"requested": str(line.quantity), "asked": str(error.asked)},
            reason="aid_line_full",
        ) from None
    before = _commitment_snapshot(commitment)
    if not commitment.exercise:
        _reserve(session, commitment.resource_id, commitment.quantity)
        if commitment.bookable:
            _check_no_overlap(session, commitment)
    try:
        _move(session, commitment, frm, to, accepted_at=utcnow())
    except IntegrityError as error:  # PostgreSQL's exclusion constraint
        raise Conflict(
            "the entry is already booked for an overlapping time", reason="aid_double_booked"
        ) from error
    _audit(session, actor, commitment, Action.ACCEPT, before)
    return commitment


def decline(session: DbSession, actor: Actor, commitment_id: int) -> AidCommitment:
    """Decline an offer for the requesting city (surplus, or not needed)."""
    commitment, before = _act(session, actor, commitment_id, Action.DECLINE)
    _audit(session, actor, commitment, Action.DECLINE, before)
    return commitment


def withdraw(session: DbSession, actor: Actor, commitment_id: int) -> AidCommitment:
    """Withdraw the owner's offer before it is accepted."""
    commitment, before = _act(session, actor, commitment_id, Action.WITHDRAW)
    _audit(session, actor, commitment, Action.WITHDRAW, before)
    return commitment


def authorise(session: DbSession, actor: Actor, commitment_id: int, order_number: str) -> AidCommitment:
    """Authorise an accepted commitment with the owner's order number (派遣令号)."""
    if not order_number:
        raise InvalidInput("authorising needs the owner's order number", reason="aid_order_number_missing")
    commitment, before = _act(session, actor, commitment_id, Action.AUTHORISE, order_number=order_number)
    _audit(session, actor, commitment, Action.AUTHORISE, before)
    return commitment


def dispatch(
    session: DbSession, actor: Actor, commitment_id: int, *, root: str = DEFAULT_ROOT
) -> AidCommitment:
    """Record the owner's dispatch: the reserved quantity becomes deployed.

    A vehicle of the fleet (an entry whose id is the vehicle's code) is sent, through the
    fleet's command pipeline, a command to drive to the report-to place that expires unused.
    """
    commitment = get_commitment(session, commitment_id)
    frm, to = _next(actor, commitment, Action.DISPATCH)
    before = _commitment_snapshot(commitment)
    if not commitment.exercise:
        _ledger(session, commitment.resource_id, reserved=-commitment.quantity, deployed=commitment.quantity)
    _move(session, commitment, frm, to, dispatched=commitment.quantity, dispatched_at=utcnow())
    _audit(session, actor, commitment, Action.DISPATCH, before)
    if not commitment.exercise:
        _command_vehicle(session, actor, commitment, root)
    return commitment


def _command_vehicle(session: DbSession, actor: Actor, commitment: AidCommitment, root: str) -> None:
    entry = commitment.resource
    if entry.kind != ResourceKind.VEHICLE.value:
        return
    vehicle = fleet.vehicle_by_code(session, entry.owner_city.slug, entry.external_id)
    if vehicle is None:
        return
    line = commitment.line
    note = f"支援 {commitment.requesting_city.name_zh}: {line.report_to_place}"[:200]
    fleet_commands.send_command(
        session,
        actor,
        vehicle.id,
        GotoAction(lat=line.report_to_lat, lon=line.report_to_lon, note=note),
        root=root,
        ttl=DISPATCH_COMMAND_TTL,
    )


def arrive(session: DbSession, actor: Actor, commitment_id: int) -> AidCommitment:
    """Confirm, for the requesting city, that the resource arrived."""
    commitment, before = _act(session, actor, commitment_id, Action.ARRIVE)
    _audit(session, actor, commitment, Action.ARRIVE, before)
    return commitment


def release(session: DbSession, actor: Actor, commitment_id: int) -> AidCommitment:
    """Release the resource for the requesting city; it stays deployed until the owner confirms its return."""
    commitment, before = _act(session, actor, commitment_id, Action.RELEASE, extension_until=None)
    _audit(session, actor, commitment, Action.RELEASE, before)
    return commitment


@dataclass(frozen=True)
class ReturnCounts:
    """What came back of a dispatched commitment; `returned` None means all not consumed or lost."""

    returned: Decimal | None = None
    consumed: Decimal = ZERO
    lost: Decimal = ZERO


def confirm_return(
    session: DbSession, actor: Actor, commitment_id: int, counts: ReturnCounts = ReturnCounts()
) -> AidCommitment:
    """Confirm the return for the owner: deployed is freed, consumed and lost come off the stock."""
    commitment = get_commitment(session, commitment_id)
    frm, to = _next(actor, commitment, Action.CONFIRM_RETURN)
    dispatched = commitment.dispatched
    returned = dispatched - counts.consumed - counts.lost if counts.returned is None else counts.returned
    try:
        rules.check_return(dispatched, returned, counts.consumed, counts.lost)
    except rules.Unbalanced as error:
        raise InvalidInput(
            str(error), details={"dispatched": f"{dispatched.normalize():f}"}, reason="aid_return_unbalanced"
        ) from None
    before = _commitment_snapshot(commitment)
    if not commitment.exercise:
        gone = counts.consumed + counts.lost
        _ledger(session, commitment.resource_id, deployed=-dispatched, on_hand=-gone)
    _move(session, commitment, frm, to, returned=returned, consumed=counts.consumed, lost=counts.lost)
    _audit(session, actor, commitment, Action.CONFIRM_RETURN, before)
    return commitment


def cancel(session: DbSession, actor: Actor, commitment_id: int) -> AidCommitment:
    """Cancel an offer or a commitment not yet dispatched, giving a hold back."""
    return _give_back(session, actor, commitment_id, Action.CANCEL)


def expire(session: DbSession, actor: Actor, commitment_id: int) -> AidCommitment:
    """Expire an offer or an unauthorised hold whose time ran out (the hub's timers only)."""
    return _give_back(session, actor, commitment_id, Action.EXPIRE)


def _give_back(session: DbSession, actor: Actor, commitment_id: int, action: Action) -> AidCommitment:
    commitment = get_commitment(session, commitment_id)
    frm, to = _next(actor, commitment, action)
    before = _commitment_snapshot(commitment)
    if frm in rules.RESERVING_STATES and not commitment.exercise:
        _ledger(session, commitment.resource_id, reserved=-commitment.quantity)
    _move(session, commitment, frm, to)
    _audit(session, actor, commitment, action, before)
    return commitment


def ask_extension(
    session: DbSession, actor: Actor, commitment_id: int, until: datetime | None = None
) -> AidCommitment:
    """Ask the owner, for the requesting city, to keep the resource longer (until `until`, if given)."""
    if until is not None:
        current = get_commitment(session, commitment_id)
        if until <= current.end_at:
            raise InvalidInput(
                "an extension must end later than the current end", reason="extension_not_later"
            )
    commitment, before = _act(session, actor, commitment_id, Action.ASK_EXTENSION, extension_until=until)
    _audit(session, actor, commitment, Action.ASK_EXTENSION, before)
    return commitment


def answer_extension(
    session: DbSession, actor: Actor, commitment_id: int, new_end: datetime | None
) -> AidCommitment:
    """Answer an extension for the owner: grant it until `new_end`, or refuse it with None."""
    commitment = get_commitment(session, commitment_id)
    frm, to = _next(actor, commitment, Action.ANSWER_EXTENSION)
    before = _commitment_snapshot(commitment)
    values: dict[str, object] = {"extension_until": None}
    if new_end is not None:
        if new_end <= commitment.end_at:
            raise InvalidInput(
                "an extension must end later than the current end", reason="extension_not_later"
            )
        if commitment.bookable and not commitment.exercise:
            # Take the entry's row first, so that bookings of the entry wait for this transaction.
            _ledger(session, commitment.resource_id, reserved=ZERO)
            _check_no_overlap(session, commitment, end=new_end)
        values["end_at"] = new_end
    try:
        _move(session, commitment, frm, to, **values)
    except IntegrityError as error:  # PostgreSQL's exclusion constraint
        raise Conflict(
            "the entry is already booked for an overlapping time", reason="aid_double_booked"
        ) from error
    _audit(session, actor, commitment, Action.ANSWER_EXTENSION, before)
    return commitment


def request_return(session: DbSession, actor: Actor, commitment_id: int) -> AidCommitment:
    """Ask, for the owner, that a deployed resource come home."""
    commitment, before = _act(session, actor, commitment_id, Action.REQUEST_RETURN)
    _audit(session, actor, commitment, Action.REQUEST_RETURN, before)
    return commitment


def refuse_return(session: DbSession, actor: Actor, commitment_id: int) -> AidCommitment:
    """Keep, for the requesting city, a resource whose return the owner asked for."""
    commitment, before = _act(session, actor, commitment_id, Action.REFUSE_RETURN)
    _audit(session, actor, commitment, Action.REFUSE_RETURN, before)
    return commitment


# Sourcing: asking the owning cities in rings, and the timers --------------------------------------


def ring_key(request_id: int, ring: int) -> str:
    """Return the flow-request key of asking one ring of a request."""
    return f"aid:{request_id}:ring:{ring}"


def get_request(session: DbSession, request_id: int) -> AidRequest:
    """Return one request, or fail."""
    request = session.get(AidRequest, request_id)
    if request is None:
        raise NotFound(f"no aid request {request_id}")
    return request


def sourcing_rings(
    session: DbSession, request: AidRequest, *, fresh_for: timedelta, now: datetime | None = None
) -> list[rules.Ring]:
    """Return the rings of cities to ask for a request's lines, nearest first.

    Every line is ranked on its own and shortlisted (`rules.shortlist`: the shortlist keeps each
    city's nearest candidate, so the rings are those of the whole ranking); a city sits in the
    ring of its nearest candidate for any line, with its shortlisted candidates. The lines are
    read from the database together (`_nearest_of_groups`), as `rank_candidates` reads one.
    """
    now = now or utcnow()
    lines = list(request.lines)
    per_city = rules.SHORTLIST_PER_CITY
    if per_city != 1 or not lines:
        ranked = [
            r for line in lines for r in rank_candidates(session, line.id, fresh_for=fresh_for, now=now)
        ]
        return rules.rings(ranked)
    found = _nearest_of_groups(session, lines, now - fresh_for)
    return rules.rings(
        [
            r
            for line, rows in zip(lines, found, strict=True)
            for r in _ranked(line, rows, now=now, fresh_for=fresh_for, per_city=per_city)
        ]
    )


def asks(session: DbSession, request_id: int) -> list[AidAsk]:
    """Return the cities asked for a request, by ring and deadline."""
    return list(
        session.scalars(
            select(AidAsk)
            .where(AidAsk.request_id == request_id)
            .order_by(AidAsk.ring, AidAsk.deadline, AidAsk.id)
        )
    )


def ask_ring(
    session: DbSession, request_id: int, ring: int, *, fresh_for: timedelta, now: datetime | None = None
) -> list[str]:
    """Ask the cities of one ring that were not asked yet, each with a deadline; return their slugs.

    Nothing is asked of a request that is no longer open or beyond the last ring; asking the
    same ring again asks nobody twice (one ask per city and request, a unique key). `fresh_for`
    is how long a verification holds (`Settings.aid_verify_days`).
    """
    now = now or utcnow()
    request = get_request(session, request_id)
    if request.status != "open":
        return []
    found = sourcing_rings(session, request, fresh_for=fresh_for, now=now)
    if ring >= len(found):
        return []
    already = {a.city_id for a in asks(session, request_id)}
    slugs = {c.slug: c.id for c in session.scalars(select(City).where(City.slug.in_(found[ring].cities)))}
    asked: list[str] = []
    for slug in found[ring].cities:
        city_id = slugs.get(slug)
        if city_id is None or city_id in already:
            continue
        session.add(
            AidAsk(request_id=request_id, city_id=city_id, ring=ring, asked_at=now, deadline=now + ASK_WINDOW)
        )
        asked.append(slug)
    if asked:
        session.flush()
        audit.record(
            session,
            TIMER,
            "aid_request.asked",
            "aid_request",
            request_id,
            after={"ring": ring, "cities": asked},
        )
    return asked


def _answer_ask(session: DbSession, request_id: int, city_id: int, answer: str, now: datetime) -> None:
    table = table_of(AidAsk)
    session.execute(
        update(table)
        .where(table.c.request_id == request_id, table.c.city_id == city_id, table.c.answered_at.is_(None))
        .values(answered_at=now, answer=answer)
    )


def decline_ask(session: DbSession, actor: Actor, request_id: int) -> AidAsk:
    """Answer, for the actor's city, that it cannot help with a request it was asked about."""
    city_id = _city_of(actor, "answer a request")
    ask = session.scalar(select(AidAsk).where(AidAsk.request_id == request_id, AidAsk.city_id == city_id))
    if ask is None:
        raise NotFound("your city was not asked for this request")
    if ask.answered_at is None:
        _answer_ask(session, request_id, city_id, "declined", utcnow())
        session.refresh(ask)
        audit.record(
            session, actor, "aid_request.declined", "aid_request", request_id, after={"city_id": city_id}
        )
    return ask


def _uncovered(session: DbSession, request: AidRequest) -> bool:
    """Return whether some line of the request is not yet covered by live offers and commitments."""
    live = [AidState.OFFERED.value, *(s.value for s in rules.BOOKED_STATES)]
    for line in request.lines:
        offered = session.scalar(
            select(func.coalesce(func.sum(AidCommitment.quantity), 0)).where(
                AidCommitment.line_id == line.id, AidCommitment.state.in_(live)
            )
        )
        if Decimal(offered or 0) < line.quantity:
            return True
    return False


def schedule_rings(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask the next ring of every open request whose last ring is over and a line is still short.

    A ring is over when its deadline has passed or every city in it has answered.
    """
    for request in session.scalars(select(AidRequest).where(AidRequest.status == "open")):
        asked = asks(session, request.id)
        if not asked:
            continue
        ring = max(a.ring for a in asked)
        current = [a for a in asked if a.ring == ring]
        over = all(a.answered_at is not None for a in current) or max(a.deadline for a in current) <= now
        if over and _uncovered(session, request):
            flow_requests.enqueue(
                session,
                SOURCE,
                key=ring_key(request.id, ring + 1),
                parameters={"aid_request_id": request.id, "ring": ring + 1},
            )


def schedule_reminders(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask for a reminder to every asked city silent when its deadline is near."""
    due = session.scalars(
        select(AidAsk)
        .join(AidRequest)
        .where(
            AidAsk.answered_at.is_(None),
            AidAsk.deadline <= now + REMIND_BEFORE,
            AidRequest.status == "open",
        )
    )
    for ask in due:
        flow_requests.enqueue(
            session,
            REMIND,
            key=f"aid:{ask.request_id}:ask:{ask.city_id}:remind",
            parameters={"ask_id": ask.id},
        )


def remind_ask(session: DbSession, ask_id: int) -> bool:
    """Remind an asked city that has not answered; return whether a reminder was written now."""
    ask = session.get(AidAsk, ask_id)
    if ask is None or ask.answered_at is not None:
        return False
    exists = session.scalar(
        select(Reminder.id).where(
            Reminder.kind == "aid_ask", Reminder.subject_id == ask.id, Reminder.stage == "reminded"
        )
    )
    if exists is not None:
        return False
    session.add(
        Reminder(
            kind="aid_ask",
            subject_id=ask.id,
            city_id=ask.city_id,
            stage="reminded",
            details={"request": str(ask.request.public_id), "deadline": ask.deadline.isoformat()},
        )
    )
    session.flush()
    return True


def schedule_expiries(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask to expire offers past their validity and holds not authorised within HOLD_WINDOW."""
    offers = session.scalars(
        select(AidCommitment.id).where(
            AidCommitment.state == AidState.OFFERED.value, AidCommitment.valid_until <= now
        )
    )
    for commitment_id in offers:
        flow_requests.enqueue(
            session,
            EXPIRE,
            key=f"aid:{commitment_id}:expire-offer",
            parameters={"commitment_id": commitment_id},
        )
    holds = session.scalars(
        select(AidCommitment.id).where(
            AidCommitment.state == AidState.ACCEPTED.value, AidCommitment.accepted_at <= now - HOLD_WINDOW
        )
    )
    for commitment_id in holds:
        flow_requests.enqueue(
            session,
            EXPIRE,
            key=f"aid:{commitment_id}:expire-hold",
            parameters={"commitment_id": commitment_id},
        )


def expire_if_due(session: DbSession, commitment_id: int, *, now: datetime | None = None) -> bool:
    """Expire an offer past its validity or a hold unauthorised too long; return whether it expired.

    A commitment that moved on meanwhile (authorised, declined, …) is left alone.
    """
    now = now or utcnow()
    commitment = get_commitment(session, commitment_id)
    state = AidState(commitment.state)
    due = (state is AidState.OFFERED and commitment.valid_until <= now) or (
        state is AidState.ACCEPTED
        and commitment.accepted_at is not None
        and commitment.accepted_at <= now - HOLD_WINDOW
    )
    if not due:
        return False
    try:
        expire(session, TIMER, commitment_id)
    except Conflict:
        return False
    return True


def expected_arrival(commitment: AidCommitment) -> datetime | None:
    """Return when a dispatched resource should be on scene: needed-by, or dispatch plus the drive."""
    if commitment.dispatched_at is None:
        return None
    line, entry = commitment.line, commitment.resource
    drive = timedelta(
        hours=rules.haversine_km(entry.lat, entry.lon, line.report_to_lat, line.report_to_lon) / ROAD_KMH
    )
    return max(commitment.start_at, commitment.dispatched_at + drive)


def schedule_overdue(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask to alert the requesting city of every dispatched resource overdue on scene."""
    dispatched = session.scalars(
        select(AidCommitment).where(AidCommitment.state == AidState.DISPATCHED.value)
    )
    for commitment in dispatched:
        expected = expected_arrival(commitment)
        if expected is not None and expected + ARRIVAL_GRACE <= now:
            flow_requests.enqueue(
                session,
                OVERDUE,
                key=f"aid:{commitment.id}:overdue",
                parameters={"commitment_id": commitment.id},
            )


def alert_overdue_arrival(session: DbSession, commitment_id: int) -> bool:
    """Tell the requesting city that a dispatched resource is overdue; return whether it was told now."""
    commitment = get_commitment(session, commitment_id)
    if commitment.state != AidState.DISPATCHED.value:
        return False
    exists = session.scalar(
        select(Reminder.id).where(
            Reminder.kind == "aid_arrival", Reminder.subject_id == commitment.id, Reminder.stage == "overdue"
        )
    )
    if exists is not None:
        return False
    expected = expected_arrival(commitment)
    session.add(
        Reminder(
            kind="aid_arrival",
            subject_id=commitment.id,
            city_id=commitment.requesting_city_id,
            stage="overdue",
            details={
                "expected": expected.isoformat() if expected else None,
                "owner": commitment.owner_city.slug,
            },
        )
    )
    session.flush()
    audit.record(
        session,
        TIMER,
        "aid_commitment.overdue",
        "aid_commitment",
        commitment.id,
        after={"state": commitment.state},
    )
    return True


def overdue_alerts(session: DbSession, city_id: int) -> set[int]:
    """Return the commitments the city was told are overdue on scene."""
    return set(
        session.scalars(
            select(Reminder.subject_id).where(
                Reminder.kind == "aid_arrival", Reminder.city_id == city_id, Reminder.stage == "overdue"
            )
        )
    )


# What a city owes ------------------------------------------------------------------------------


class Owed(StrEnum):
    """What a city owes in mutual aid, as its desk lists it."""

    ANSWER = "answer"  # an asked city: offer or decline
    ACCEPT = "accept"  # the requester: accept or decline an offer
    AUTHORISE = "authorise"  # the owner: authorise a hold before it expires
    ARRIVAL = "arrival"  # the requester: confirm a dispatched resource on scene
    RETURN = "return"  # the owner: confirm a released resource back home
    EXTENSION = "extension"  # the owner: grant or refuse an extension before the deployment ends
    KEEP = "keep"  # the requester: release, or keep, a resource whose return the owner asked for
    SIGN = "sign"  # either city: sign the actual cost the owner entered


@dataclass(frozen=True)
class OwedItem:
    """One thing a city owes, on a request (and a commitment), with its deadline."""

    kind: Owed
    request: AidRequest
    due_at: datetime | None
    commitment: AidCommitment | None = None
    overdue_alert: bool = False


def owed(session: DbSession, city_id: int) -> list[OwedItem]:
    """Return what the city owes in mutual aid, soonest deadline first (live requests only)."""
    items: list[OwedItem] = []
    silent = session.scalars(
        select(AidAsk)
        .join(AidRequest)
        .where(AidAsk.city_id == city_id, AidAsk.answered_at.is_(None), AidRequest.status == "open")
    )
    items += [OwedItem(Owed.ANSWER, ask.request, ask.deadline) for ask in silent]
    mine = (AidCommitment.owner_city_id == city_id) | (AidCommitment.requesting_city_id == city_id)
    wanted = [
        AidState.OFFERED,
        AidState.ACCEPTED,
        AidState.DISPATCHED,
        AidState.RELEASED,
        AidState.EXTENSION_ASKED,
        AidState.RETURN_ASKED,
    ]
    alerted = overdue_alerts(session, city_id)
    for c in session.scalars(
        select(AidCommitment).where(mine, AidCommitment.state.in_([s.value for s in wanted]))
    ):
        state, owner = AidState(c.state), c.owner_city_id == city_id
        if state is AidState.OFFERED and not owner:
            items.append(OwedItem(Owed.ACCEPT, c.request, c.valid_until, c))
        elif state is AidState.ACCEPTED and owner and c.accepted_at is not None:
            items.append(OwedItem(Owed.AUTHORISE, c.request, c.accepted_at + HOLD_WINDOW, c))
        elif state is AidState.DISPATCHED and not owner:
            items.append(OwedItem(Owed.ARRIVAL, c.request, expected_arrival(c), c, c.id in alerted))
        elif state is AidState.RELEASED and owner:
            items.append(OwedItem(Owed.RETURN, c.request, None, c))
        elif state is AidState.EXTENSION_ASKED and owner:
            items.append(OwedItem(Owed.EXTENSION, c.request, c.end_at, c))
        elif state is AidState.RETURN_ASKED and not owner:
            items.append(OwedItem(Owed.KEEP, c.request, None, c))
    unsigned = ((AidCommitment.owner_city_id == city_id) & AidCommitment.owner_signed_at.is_(None)) | (
        (AidCommitment.requesting_city_id == city_id) & AidCommitment.requester_signed_at.is_(None)
    )
    for c in session.scalars(
        select(AidCommitment)
        .where(AidCommitment.actual_cost.is_not(None), unsigned)
        .order_by(AidCommitment.actual_cost_at)
    ):
        items.append(OwedItem(Owed.SIGN, c.request, None, c))
    return items


@dataclass(frozen=True)
class LineProgress:
    """Where a line stands: requested, offered, committed, en route, on scene, released, returned.

    Released is what the requesting city let go and the owner has not yet confirmed back home
    (on its way home); returned is what came back, without what was consumed or lost.
    """

    line: AidRequestLine
    requested: Decimal
    offered: Decimal
    committed: Decimal
    en_route: Decimal
    on_scene: Decimal
    released: Decimal
    returned: Decimal


_PROGRESS = {
    AidState.OFFERED: "offered",
    AidState.ACCEPTED: "committed",
    AidState.AUTHORISED: "committed",
    AidState.DISPATCHED: "en_route",
    AidState.ARRIVED: "on_scene",
    AidState.EXTENSION_ASKED: "on_scene",
    AidState.RETURN_ASKED: "on_scene",
    AidState.RELEASED: "released",
    AidState.RETURNED: "returned",
}


def commitments_of(session: DbSession, request_id: int) -> list[AidCommitment]:
    """Return every offer and commitment of a request, oldest first."""
    return list(
        session.scalars(
            select(AidCommitment).where(AidCommitment.request_id == request_id).order_by(AidCommitment.id)
        )
    )


def progress(session: DbSession, request: AidRequest) -> list[LineProgress]:
    """Return, per line of a request, the quantities in each stage of the lifecycle."""
    sums: dict[tuple[int, str], Decimal] = {}
    for c in commitments_of(session, request.id):
        stage = _PROGRESS.get(AidState(c.state))
        if stage is None:
            continue
        amount = c.returned if stage == "returned" else c.dispatched if stage == "released" else c.quantity
        sums[(c.line_id, stage)] = sums.get((c.line_id, stage), ZERO) + amount
    stages = ("offered", "committed", "en_route", "on_scene", "released", "returned")
    none = Decimal("0.000")  # in the stored scale, as the sums are
    return [
        LineProgress(line, line.quantity, *(sums.get((line.id, s), none) for s in stages))
        for line in request.lines
    ]


def get_request_by_public_id(session: DbSession, public_id: object) -> AidRequest:
    """Return one request by its public id, or fail."""
    request = session.scalar(select(AidRequest).where(AidRequest.public_id == public_id))
    if request is None:
        raise NotFound("no such aid request")
    return request


# For the UI and the API ------------------------------------------------------------------------


def registry_of(session: DbSession, city_id: int) -> list[AidResource]:
    """Return a city's registry, by type and name."""
    return list(
        session.scalars(
            select(AidResource)
            .where(AidResource.owner_city_id == city_id)
            .order_by(AidResource.type_code, AidResource.name, AidResource.id)
        )
    )


def requests_for(session: DbSession, city_id: int, limit: int = 100) -> list[AidRequest]:
    """Return the requests a city made or was asked about, newest first."""
    asked = select(AidAsk.request_id).where(AidAsk.city_id == city_id)
    return list(
        session.scalars(
            select(AidRequest)
            .where((AidRequest.requesting_city_id == city_id) | AidRequest.id.in_(asked))
            .order_by(AidRequest.created_at.desc(), AidRequest.id.desc())
            .limit(limit)
        )
    )


def offer_package(session: DbSession, actor: Actor, line_id: int, resource_id: int) -> AidCommitment:
    """Offer an entry's stored package for a line in one step: as much as is free and still wanted."""
    line = get_line(session, line_id)
    entry = get_entry(session, resource_id)
    if entry.bookable:
        quantity = Decimal(1)
    else:
        live = [AidState.OFFERED.value, *(s.value for s in rules.BOOKED_STATES)]
        covered = session.scalar(
            select(func.coalesce(func.sum(AidCommitment.quantity), 0)).where(
                AidCommitment.line_id == line.id, AidCommitment.state.in_(live)
            )
        )
        quantity = min(entry.available, line.quantity - Decimal(covered or 0))
        if quantity <= 0:
            raise Conflict(
                "nothing to offer: the line is covered or the entry has nothing free",
                reason="aid_nothing_to_offer",
            )
    return make_offer(session, actor, line_id, resource_id, quantity)


def request_to_contract(request: AidRequest) -> contract.AidRequest:
    """Return a request as its contract."""
    return contract.AidRequest(
        id=request.public_id,
        requesting_city=request.requesting_city.slug,
        title=request.title,
        lines=tuple(
            RequestLine(
                line_id=ln.line_id,
                type_code=ln.type_code,
                min_grade=Grade(ln.min_grade) if ln.min_grade is not None else None,
                quantity=ln.quantity,
                unit=ln.unit,
                needed_by=ln.needed_by,
                duration_hours=ln.duration_hours,
                report_to=ReportTo(
                    place=ln.report_to_place, point=GeoPoint(lat=ln.report_to_lat, lon=ln.report_to_lon)
                ),
                note=ln.note,
            )
            for ln in request.lines
        ),
        contact=Contact(name=request.contact_name, phone=request.contact_phone, role=request.contact_role),
        created_at=request.created_at,
        exercise=request.exercise,
    )


def commitment_to_contract(commitment: AidCommitment) -> contract.AidCommitment:
    """Return a commitment (not a bare offer) as its contract."""
    return contract.AidCommitment(
        id=commitment.public_id,
        offer_id=commitment.public_id,
        request_id=commitment.request.public_id,
        line_id=commitment.line.line_id,
        owner_city=commitment.owner_city.slug,
        requesting_city=commitment.requesting_city.slug,
        resource_id=commitment.resource.external_id,
        quantity=commitment.quantity,
        unit=commitment.resource.unit,
        start=commitment.start_at,
        end=commitment.end_at,
        state=AidState(commitment.state),
        order_number=commitment.order_number,
        estimated_cost=commitment.estimated_cost,
        exercise=commitment.exercise,
        updated_at=commitment.updated_at,
    )


def commitment_by_public_id(session: DbSession, public_id: object) -> AidCommitment:
    """Return one offer or commitment by its public id, or fail."""
    commitment = session.scalar(select(AidCommitment).where(AidCommitment.public_id == public_id))
    if commitment is None:
        raise NotFound("no such offer or commitment")
    return commitment


CSV_COLUMNS = (
    "id",
    "type_code",
    "grade",
    "name",
    "quantity",
    "lat",
    "lon",
    "place",
    "status",
    "contact_name",
    "contact_phone",
    "personnel",
    "daily_rate",
    "self_sufficiency_hours",
    "mobilise_minutes",
)
"""The columns of a registry CSV, in this order, with a header row; the unit comes from the type."""


def entries_from_csv(text: str, *, owner: str, verified_by: str, now: datetime) -> list[RegistryEntry]:
    """Read a registry CSV as entries of `owner`, or raise `InvalidInput` naming the bad row."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [
        c for c in ("id", "type_code", "name", "quantity", "lat", "lon") if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise InvalidInput(f"the CSV lacks the columns {', '.join(missing)}")
    entries = []
    for number, row in enumerate(reader, start=2):

        def get(name: str, row: dict[str, str | None] = row) -> str:
            return (row.get(name) or "").strip()

        try:
            type_code = get("type_code")
            if type_code not in CATALOGUE:
                raise ValueError(f"unknown type {type_code!r}")
            kind = CATALOGUE[type_code]
            grade = get("grade")
            package = None
            if get("personnel") or get("daily_rate"):
                package = AidPackage(
                    personnel=int(get("personnel") or 0),
                    daily_rate=Decimal(get("daily_rate") or 0),
                    self_sufficiency_hours=int(get("self_sufficiency_hours") or 0),
                    mobilise_minutes=int(get("mobilise_minutes") or 0),
                )
            entries.append(
                RegistryEntry(
                    id=get("id"),
                    owner_city=owner,
                    type_code=type_code,
                    kind=kind.kind,
                    grade=Grade[grade.upper()]
                    if grade and not grade.isdigit()
                    else (Grade(int(grade)) if grade else None),
                    name=get("name"),
                    quantity=Decimal(get("quantity")),
                    unit=kind.unit,
                    location=GeoPoint(lat=float(get("lat")), lon=float(get("lon"))),
                    place=get("place"),
                    status=contract.EntryStatus(get("status") or "available"),
                    contact=Contact(
                        name=get("contact_name") or verified_by, phone=get("contact_phone") or "-"
                    ),
                    package=package,
                    verified_at=now,
                    verified_by=verified_by,
                    updated_at=now,
                )
            )
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise InvalidInput(f"row {number}: {problems}") from None
        except (ValueError, KeyError, ArithmeticError) as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise InvalidInput(f"row {number}: {message}") from None
    return entries


def import_entries(session: DbSession, actor: Actor, entries: Sequence[RegistryEntry]) -> int:
    """Register every entry (all or none: the caller rolls back on a refusal); return how many."""
    for data in entries:
        register_entry(session, actor, data)
    return len(entries)


STEPS: dict[str, Action] = {
    "accept": Action.ACCEPT,
    "decline": Action.DECLINE,
    "withdraw": Action.WITHDRAW,
    "authorise": Action.AUTHORISE,
    "dispatch": Action.DISPATCH,
    "arrive": Action.ARRIVE,
    "release": Action.RELEASE,
    "return": Action.CONFIRM_RETURN,
    "cancel": Action.CANCEL,
    "extend": Action.ASK_EXTENSION,
    "answer-extension": Action.ANSWER_EXTENSION,
    "request-return": Action.REQUEST_RETURN,
    "refuse-return": Action.REFUSE_RETURN,
}
"""The steps a person takes on an offer or commitment, by the name the UI and the API use."""


def take_step(
    session: DbSession,
    actor: Actor,
    commitment_id: int,
    step: str,
    *,
    order_number: str | None = None,
    counts: ReturnCounts = ReturnCounts(),
    new_end: datetime | None = None,
    root: str = DEFAULT_ROOT,
) -> AidCommitment:
    """Take one named step on an offer or commitment for the actor's city.

    Asking an extension asks for `new_end` (if given); answering one grants it until `new_end`,
    or refuses it when `new_end` is None.
    """
    match STEPS.get(step):
        case Action.ACCEPT:
            return accept(session, actor, commitment_id)
        case Action.DECLINE:
            return decline(session, actor, commitment_id)
        case Action.WITHDRAW:
            return withdraw(session, actor, commitment_id)
        case Action.AUTHORISE:
            return authorise(session, actor, commitment_id, order_number or "")
        case Action.DISPATCH:
            return dispatch(session, actor, commitment_id, root=root)
        case Action.ARRIVE:
            return arrive(session, actor, commitment_id)
        case Action.RELEASE:
            return release(session, actor, commitment_id)
        case Action.CONFIRM_RETURN:
            return confirm_return(session, actor, commitment_id, counts)
        case Action.CANCEL:
            return cancel(session, actor, commitment_id)
        case Action.ASK_EXTENSION:
            return ask_extension(session, actor, commitment_id, new_end)
        case Action.ANSWER_EXTENSION:
            return answer_extension(session, actor, commitment_id, new_end)
        case Action.REQUEST_RETURN:
            return request_return(session, actor, commitment_id)
        case Action.REFUSE_RETURN:
            return refuse_return(session, actor, commitment_id)
    raise NotFound(f"no step {step!r}")


def steps_for(commitment: AidCommitment, city_id: int | None) -> list[str]:
    """Return the named steps a city may take on a commitment now (the buttons it sees)."""
    if city_id == commitment.owner_city_id:
        role = rules.Role.OWNER
    elif city_id == commitment.requesting_city_id:
        role = rules.Role.REQUESTER
    else:
        return []
    state = AidState(commitment.state)
    return [
        name
        for name, action in STEPS.items()
        if (move := rules.TRANSITIONS.get((state, action))) is not None and role in move[1]
    ]


def exercise_requests(
    session: DbSession, city_ids: Sequence[int], since: datetime, until: datetime | None = None
) -> list[tuple[int, datetime, str]]:
    """Return the exercise requests the cities made from `since` (to `until`): (city id, when,
    public id), oldest first; a drill reads them as its players' actions."""
    query = select(AidRequest.requesting_city_id, AidRequest.created_at, AidRequest.public_id).where(
        AidRequest.exercise.is_(True),
        AidRequest.requesting_city_id.in_(list(city_ids)),
        AidRequest.created_at >= since,
    )
    if until is not None:
        query = query.where(AidRequest.created_at <= until)
    rows = session.execute(query.order_by(AidRequest.created_at, AidRequest.id))
    return [(city_id, at, str(public_id)) for city_id, at, public_id in rows]
