"""The rules of mutual aid as pure functions: legal moves, the quantity ledger, bookings, ranking.

Nothing here reads or writes a database; the services apply the same rules inside one
transaction and the database enforces the ledger again (a conditional UPDATE whose row count
decides, CHECK constraints, an exclusion constraint on PostgreSQL), so a rule broken by a race is
refused twice.

The lifecycle of one offer and the commitment it becomes (`AidState`), with who may move it:

    offered --accept(R)--> accepted --authorise(O)--> authorised --dispatch(O)--> dispatched
    dispatched --arrive(R)--> arrived --release(R)--> released --confirm_return(O)--> returned
    arrived --ask_extension(R)--> extension_asked --answer_extension(O)--> arrived
    arrived --request_return(O)--> return_asked --refuse_return(R)--> arrived
    extension_asked | return_asked --release(R)--> released
    offered --decline(R)--> declined;  offered --withdraw(O)--> withdrawn
    offered | accepted --expire(S)--> expired      (offer window or unauthorised hold ran out)
    offered | accepted | authorised --cancel(O or R)--> cancelled

R is the requesting city, O the owning city, S the hub's timers. Declined, withdrawn, expired,
cancelled and returned are final. Nothing is cancelled once dispatched: a recalled resource is
released and comes back through the return, so every dispatched unit is accounted for.

The ledger of one resource (`Holding`) counts `on_hand`, `reserved` (accepted or authorised
commitments) and `deployed` (dispatched until returned); always
0 <= reserved, 0 <= deployed, reserved + deployed <= on_hand. Accepting reserves, cancelling or
expiring a hold gives it back, dispatching moves it from reserved to deployed, and the owner's
confirmed return frees it, taking what was consumed or lost off the stock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict

from contracts.mutual_aid import AidState
from contracts.resource_types import TypeRef, fit_rank, satisfies

ZERO = Decimal(0)
EARTH_RADIUS_KM = 6371.0088
"""The mean Earth radius (IUGG), good to about 0.5 % for haversine distances."""
DEFAULT_FRESH_FOR = timedelta(days=30)
DEFAULT_RING_BANDS_KM: tuple[float, ...] = (100.0, 200.0, 350.0)
"""Ring edges in km from the report-to place; the last ring takes everything farther."""
SHORTLIST_PER_CITY = 1
"""How many of each city's best candidates a line's shortlist keeps besides its nearest (`shortlist`).

One is what sourcing needs (a city is asked for the whole request; its ring is its nearest
candidate's) and what the database finds fastest."""


class Action(StrEnum):
    """What a city (or a timer) does to an offer or commitment."""

    ACCEPT = "accept"
    DECLINE = "decline"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"
    AUTHORISE = "authorise"
    DISPATCH = "dispatch"
    ARRIVE = "arrive"
    ASK_EXTENSION = "ask_extension"
    ANSWER_EXTENSION = "answer_extension"
    REQUEST_RETURN = "request_return"
    REFUSE_RETURN = "refuse_return"
    RELEASE = "release"
    CONFIRM_RETURN = "confirm_return"
    CANCEL = "cancel"


class Role(StrEnum):
    """Which side acts: the owning city, the requesting city, or the hub's own timers."""

    OWNER = "owner"
    REQUESTER = "requester"
    SYSTEM = "system"


S = AidState
_O, _R, _S = frozenset({Role.OWNER}), frozenset({Role.REQUESTER}), frozenset({Role.SYSTEM})
_EITHER = frozenset({Role.OWNER, Role.REQUESTER})

TRANSITIONS: dict[tuple[AidState, Action], tuple[AidState, frozenset[Role]]] = {
    (S.OFFERED, Action.ACCEPT): (S.ACCEPTED, _R),
    (S.OFFERED, Action.DECLINE): (S.DECLINED, _R),
    (S.OFFERED, Action.WITHDRAW): (S.WITHDRAWN, _O),
    (S.OFFERED, Action.EXPIRE): (S.EXPIRED, _S),
    (S.OFFERED, Action.CANCEL): (S.CANCELLED, _EITHER),
    (S.ACCEPTED, Action.AUTHORISE): (S.AUTHORISED, _O),
    (S.ACCEPTED, Action.EXPIRE): (S.EXPIRED, _S),
    (S.ACCEPTED, Action.CANCEL): (S.CANCELLED, _EITHER),
    (S.AUTHORISED, Action.DISPATCH): (S.DISPATCHED, _O),
    (S.AUTHORISED, Action.CANCEL): (S.CANCELLED, _EITHER),
    (S.DISPATCHED, Action.ARRIVE): (S.ARRIVED, _R),
    (S.ARRIVED, Action.ASK_EXTENSION): (S.EXTENSION_ASKED, _R),
    (S.ARRIVED, Action.REQUEST_RETURN): (S.RETURN_ASKED, _O),
    (S.ARRIVED, Action.RELEASE): (S.RELEASED, _R),
    (S.EXTENSION_ASKED, Action.ANSWER_EXTENSION): (S.ARRIVED, _O),
    (S.EXTENSION_ASKED, Action.RELEASE): (S.RELEASED, _R),
    (S.RETURN_ASKED, Action.REFUSE_RETURN): (S.ARRIVED, _R),
    (S.RETURN_ASKED, Action.RELEASE): (S.RELEASED, _R),
    (S.RELEASED, Action.CONFIRM_RETURN): (S.RETURNED, _O),
}
"""(state, action) -> (next state, roles that may take it); every move not listed is illegal."""

EDGES: frozenset[tuple[AidState, AidState]] = frozenset(
    (frm, to) for (frm, _), (to, _) in TRANSITIONS.items()
)
"""Every legal (from, to) pair, for checking a change made elsewhere (an import, a migration)."""

FINAL_STATES = frozenset({S.DECLINED, S.WITHDRAWN, S.EXPIRED, S.CANCELLED, S.RETURNED})
RESERVING_STATES = frozenset({S.ACCEPTED, S.AUTHORISED})
"""States whose quantity counts in `Holding.reserved`."""
DEPLOYED_STATES = frozenset({S.DISPATCHED, S.ARRIVED, S.EXTENSION_ASKED, S.RETURN_ASKED, S.RELEASED})
"""States whose dispatched quantity counts in `Holding.deployed` (released: on its way home)."""
BOOKED_STATES = RESERVING_STATES | DEPLOYED_STATES
"""States in which a team, vehicle or expert is booked for the commitment's window."""


class RuleError(ValueError):
    """A move the rules refuse; the message says which rule and with which values."""


class IllegalTransition(RuleError):
    """A move from a state that does not allow it."""

    def __init__(self, frm: AidState, to: AidState | None, action: Action | None = None) -> None:
        """Name the states (and action) of the refused move and the moves that were possible."""
        self.frm, self.to, self.action = frm, to, action
        possible = sorted(f"{a.value} -> {t.value}" for (f, a), (t, _) in TRANSITIONS.items() if f is frm)
        target = f"to {to.value!r}" if to is not None else f"by {action.value!r}" if action else ""
        allowed = "; ".join(possible) if possible else f"none: {frm.value!r} is final"
        via = f" by {action.value!r}" if action is not None and to is not None else ""
        super().__init__(f"cannot go from {frm.value!r} {target}{via}; possible moves: {allowed}")


class NotYourMove(RuleError):
    """A legal move taken by a side that may not take it (a 403)."""

    def __init__(self, frm: AidState, action: Action, role: Role, allowed: frozenset[Role]) -> None:
        """Name the move, who tried it, and who may."""
        self.role = role
        who = " or ".join(sorted(r.value for r in allowed))
        super().__init__(f"{action.value!r} from {frm.value!r} is for the {who}, not the {role.value}")


class OverCommitted(RuleError):
    """A reservation or dispatch larger than what is left (a 409 that says what is left)."""

    def __init__(self, asked: Decimal, available: Decimal) -> None:
        """Keep the quantity asked for and what is available."""
        self.asked, self.available = asked, available
        super().__init__(f"asked for {asked}, but only {available} is available")


class DoubleBooked(RuleError):
    """A team, vehicle or expert booked for a window that overlaps another live booking."""

    def __init__(self, resource_id: str, other_id: str, start: datetime, end: datetime) -> None:
        """Name the resource and the booking it collides with."""
        self.other_id = other_id
        super().__init__(
            f"resource {resource_id!r} is already booked by {other_id!r} "
            f"from {start.isoformat()} to {end.isoformat()}"
        )


class NotAParty(RuleError):
    """A city that is neither the owner nor the requester of a booking (a 403)."""


class Unbalanced(RuleError):
    """A return whose returned + consumed + lost is not what was dispatched."""


def next_state(state: AidState, action: Action, role: Role) -> AidState:
    """Return where `action` by `role` leads from `state`; raise `IllegalTransition` or `NotYourMove`."""
    try:
        to, allowed = TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(state, None, action) from None
    if role not in allowed:
        raise NotYourMove(state, action, role, allowed)
    return to


def check_transition(frm: AidState, to: AidState) -> None:
    """Raise `IllegalTransition` unless some action moves `frm` to `to`."""
    if (frm, to) not in EDGES:
        raise IllegalTransition(frm, to)


# The quantity ledger -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Holding:
    """The ledger of one resource; a `Holding` that breaks the invariant cannot be made."""

    on_hand: Decimal
    reserved: Decimal = ZERO
    deployed: Decimal = ZERO

    def __post_init__(self) -> None:
        """Refuse negative counts and more held than on hand."""
        if self.on_hand < 0 or self.reserved < 0 or self.deployed < 0:
            raise RuleError(f"ledger counts must not be negative: {self}")
        if self.reserved + self.deployed > self.on_hand:
            raise OverCommitted(self.reserved + self.deployed, self.on_hand)

    @property
    def available(self) -> Decimal:
        """Return what may still be reserved: on hand less reserved and deployed."""
        return self.on_hand - self.reserved - self.deployed

    def reserve(self, quantity: Decimal) -> Holding:
        """Return the ledger with `quantity` more reserved, or raise `OverCommitted`."""
        _positive(quantity)
        if quantity > self.available:
            raise OverCommitted(quantity, self.available)
        return replace(self, reserved=self.reserved + quantity)

    def unreserve(self, quantity: Decimal) -> Holding:
        """Return the ledger with a cancelled or expired hold of `quantity` given back."""
        _positive(quantity)
        if quantity > self.reserved:
            raise RuleError(f"cannot give back {quantity}: only {self.reserved} is reserved")
        return replace(self, reserved=self.reserved - quantity)

    def deploy(self, quantity: Decimal) -> Holding:
        """Return the ledger with a dispatched `quantity` moved from reserved to deployed."""
        _positive(quantity)
        if quantity > self.reserved:
            raise RuleError(f"cannot dispatch {quantity}: only {self.reserved} is reserved")
        return replace(self, reserved=self.reserved - quantity, deployed=self.deployed + quantity)

    def settle(self, dispatched: Decimal, returned: Decimal, consumed: Decimal, lost: Decimal) -> Holding:
        """Return the ledger after a confirmed return: deployed freed, consumed and lost off the stock."""
        check_return(dispatched, returned, consumed, lost)
        if dispatched > self.deployed:
            raise RuleError(f"cannot settle {dispatched}: only {self.deployed} is deployed")
        return Holding(self.on_hand - consumed - lost, self.reserved, self.deployed - dispatched)


def _positive(quantity: Decimal) -> None:
    """Refuse a quantity that is zero or negative."""
    if quantity <= 0:
        raise RuleError(f"a quantity must be positive, not {quantity}")


def check_return(dispatched: Decimal, returned: Decimal, consumed: Decimal, lost: Decimal) -> None:
    """Raise `Unbalanced` unless the parts are not negative and returned + consumed + lost = dispatched."""
    if min(returned, consumed, lost) < 0:
        raise Unbalanced("returned, consumed and lost must not be negative")
    if returned + consumed + lost != dispatched:
        raise Unbalanced(
            f"returned {returned} + consumed {consumed} + lost {lost} = {returned + consumed + lost}, "
            f"but {dispatched} were dispatched"
        )


def check_line_fill(requested: Decimal, committed: Iterable[Decimal], *, allow_surplus: bool = False) -> None:
    """Raise `OverCommitted` when a line's commitments exceed its quantity, unless a surplus is accepted."""
    total = sum(committed, ZERO)
    if total > requested and not allow_surplus:
        raise OverCommitted(total, requested)


# Bookings of teams, vehicles and experts ---------------------------------------------------------


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Return whether two half-open windows [start, end) share a moment."""
    return a_start < b_end and b_start < a_end


class _Changes(TypedDict, total=False):
    """The fields of a `Booking` that an action changes."""

    state: AidState
    history: tuple[AidState, ...]
    order_number: str | None
    dispatched: Decimal
    end: datetime
    returned: Decimal
    consumed: Decimal
    lost: Decimal


@dataclass(frozen=True, slots=True)
class Booking:
    """One offer or commitment of a resource, as the rules see it."""

    id: str
    resource_id: str
    owner_city: str
    requesting_city: str
    quantity: Decimal
    start: datetime
    end: datetime
    state: AidState = S.OFFERED
    order_number: str | None = None
    dispatched: Decimal = ZERO
    returned: Decimal = ZERO
    consumed: Decimal = ZERO
    lost: Decimal = ZERO
    history: tuple[AidState, ...] = field(default=(), compare=False)

    def role_of(self, city: str | None) -> Role:
        """Return the side `city` acts for in this booking; `None` is the hub's timers."""
        if city is None:
            return Role.SYSTEM
        if city == self.owner_city:
            return Role.OWNER
        if city == self.requesting_city:
            return Role.REQUESTER
        raise NotAParty(f"city {city!r} is neither the owner nor the requester of {self.id!r}")


def find_overlap(candidate: Booking, others: Iterable[Booking]) -> Booking | None:
    """Return a live booking of the same resource whose window overlaps `candidate`'s, if any."""
    for other in others:
        if other.id == candidate.id or other.resource_id != candidate.resource_id:
            continue
        if other.state in BOOKED_STATES and overlaps(candidate.start, candidate.end, other.start, other.end):
            return other
    return None


def check_no_overlap(candidate: Booking, others: Iterable[Booking]) -> None:
    """Raise `DoubleBooked` when `candidate` would overlap a live booking of the same resource."""
    other = find_overlap(candidate, others)
    if other is not None:
        raise DoubleBooked(candidate.resource_id, other.id, other.start, other.end)


def act(
    booking: Booking,
    holding: Holding,
    action: Action,
    city: str | None,
    *,
    bookable: bool = False,
    others: Sequence[Booking] = (),
    order_number: str | None = None,
    new_end: datetime | None = None,
    returned: Decimal | None = None,
    consumed: Decimal = ZERO,
    lost: Decimal = ZERO,
) -> tuple[Booking, Holding]:
    """Apply `action` by `city` (None: a timer) and return the new booking and ledger, or raise.

    `bookable` marks a team, vehicle or expert, whose window must not overlap `others` (the other
    bookings of the same resource) when it is accepted or extended. `answer_extension` with a
    `new_end` grants the extension and without one refuses it; `confirm_return` without `returned`
    counts as returned whatever was not consumed or lost. Nothing changes when a rule refuses: the
    caller keeps its old booking and ledger.
    """
    role = booking.role_of(city)
    to = next_state(booking.state, action, role)
    changes: _Changes = {"state": to, "history": (*booking.history, booking.state)}
    if action is Action.ACCEPT:
        if bookable:
            check_no_overlap(booking, others)
        holding = holding.reserve(booking.quantity)
    elif action in (Action.CANCEL, Action.EXPIRE) and booking.state in RESERVING_STATES:
        holding = holding.unreserve(booking.quantity)
    elif action is Action.AUTHORISE:
        if not order_number:
            raise RuleError("authorising needs the owner's order number")
        changes["order_number"] = order_number
    elif action is Action.DISPATCH:
        holding = holding.deploy(booking.quantity)
        changes["dispatched"] = booking.quantity
    elif action is Action.ANSWER_EXTENSION and new_end is not None:
        if new_end <= booking.end:
            raise RuleError("an extension must end later than the current end")
        if bookable:
            check_no_overlap(replace(booking, end=new_end), others)
        changes["end"] = new_end
    elif action is Action.CONFIRM_RETURN:
        back = booking.dispatched - consumed - lost if returned is None else returned
        holding = holding.settle(booking.dispatched, back, consumed, lost)
        changes.update({"returned": back, "consumed": consumed, "lost": lost})
    return replace(booking, **changes), holding


# Candidates and rings ----------------------------------------------------------------------------


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance in km between two WGS-84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    """Return the point on the unit sphere of a WGS-84 position, as (x, y, z).

    The dot product of two such vectors is the cosine of the angle between the places, so it
    orders places by great-circle distance (the larger, the nearer) with three products and no
    trigonometry: sourcing stores each entry's vector and lets the database compare them.
    """
    phi, lam = math.radians(lat), math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def km_of_dot(dot: float) -> float:
    """Return the great-circle distance in km between two places from the dot product of their vectors.

    Within some 1e-4 km of `haversine_km` (the dot product's rounding near 1), so a caller that
    decides by it leaves itself a margin.
    """
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(max(0.0, (1.0 - dot) / 2))))


CELLS_PER_DEGREE = 10
"""The sourcing grid: cells of 0.1 degree of latitude by 0.1 of longitude (about 11 by 9 km here)."""
_CELL_COLUMNS = 360 * CELLS_PER_DEGREE
_CELL_ROWS = 180 * CELLS_PER_DEGREE
_CELL_SLACK = 1e-9
"""How much wider than its grid lines a cell's box is taken: `cell_of` rounds, and an entry it
places in a cell must lie inside that cell's box."""


def cell_of(lat: float, lon: float) -> int:
    """Return the sourcing grid cell of a WGS-84 position (row-major from the south-west corner)."""
    row = min(_CELL_ROWS - 1, max(0, math.floor((lat + 90.0) * CELLS_PER_DEGREE)))
    col = min(_CELL_COLUMNS - 1, max(0, math.floor((lon + 180.0) * CELLS_PER_DEGREE)))
    return row * _CELL_COLUMNS + col


def cell_box(cell: int) -> tuple[float, float, float, float]:
    """Return (south, north, west, east) of a grid cell, a little wider than its grid lines."""
    row, col = divmod(cell, _CELL_COLUMNS)
    return (
        row / CELLS_PER_DEGREE - 90.0 - _CELL_SLACK,
        (row + 1) / CELLS_PER_DEGREE - 90.0 + _CELL_SLACK,
        col / CELLS_PER_DEGREE - 180.0 - _CELL_SLACK,
        (col + 1) / CELLS_PER_DEGREE - 180.0 + _CELL_SLACK,
    )


def km_to_box(lat: float, lon: float, box: tuple[float, float, float, float]) -> float:
    """Return the least great-circle distance in km from (lat, lon) to any place in a box, a hair less.

    For a fixed latitude the distance grows with the difference of longitude, so the nearest
    place lies on the box's meridian edge nearest in longitude (or straight north or south when
    the longitude is inside the box); along a meridian the distance has one stationary point,
    where tan(lat) = tan(lat0) / cos(dlon), so the least is at it or at an end. Taken 1e-6 km
    short, so that no place in the box is ever nearer than the bound by rounding.
    """
    south, north, west, east = box
    if west <= lon <= east:
        if south <= lat <= north:
            return 0.0
        edge, others = lon, [min(north, max(south, lat))]
    else:
        to_west = (west - lon) % 360.0
        to_east = (lon - east) % 360.0
        edge = west if to_west <= to_east else east
        others = [south, north]
        cos_dl = math.cos(math.radians(min(to_west, to_east)))
        if cos_dl != 0.0:
            foot = math.degrees(math.atan(math.tan(math.radians(lat)) / cos_dl))
            if south < foot < north:
                others.append(foot)
    return max(0.0, min(haversine_km(lat, lon, p, edge) for p in others) - 1e-6)


def km_to_cells(lat: float, lon: float) -> Callable[[int], float]:
    """Return `km_to_box` from (lat, lon) to a grid cell as a function of the cell, for many cells.

    The same rule with what depends only on the place or on the cell's column computed once:
    sourcing bounds a few hundred cells a line. When the column's nearer edge is less than 90
    degrees of longitude away, the distance along it is least at its stationary point (clamped
    into the cell); farther, at one end. The function keeps what it computed.
    """
    p1 = math.radians(lat)
    cos_p1 = math.cos(p1)
    columns: dict[int, tuple[bool, float, float | None]] = {}
    bounds: dict[int, float] = {}
    sin, cos, asin, sqrt, radians = math.sin, math.cos, math.asin, math.sqrt, math.radians
    diameter = 2 * EARTH_RADIUS_KM

    def column_of(col: int) -> tuple[bool, float, float | None]:
        west = col / CELLS_PER_DEGREE - 180.0 - _CELL_SLACK
        east = (col + 1) / CELLS_PER_DEGREE - 180.0 + _CELL_SLACK
        if west <= lon <= east:
            return (True, 0.0, None)
        dl = radians(min((west - lon) % 360.0, (lon - east) % 360.0))
        cos_dl = cos(dl)
        foot = math.atan(math.tan(p1) / cos_dl) if cos_dl > 0.0 else None
        return (False, sin(dl / 2) ** 2, foot)

    def bound(cell: int) -> float:
        known = bounds.get(cell)
        if known is None:
            known = bounds[cell] = exact(cell)
        return known

    def exact(cell: int) -> float:
        row, col = divmod(cell, _CELL_COLUMNS)
        south = radians(row / CELLS_PER_DEGREE - 90.0 - _CELL_SLACK)
        north = radians((row + 1) / CELLS_PER_DEGREE - 90.0 + _CELL_SLACK)
        column = columns.get(col)
        if column is None:
            column = columns[col] = column_of(col)
        inside, half_dl, foot = column
        if inside:
            if south <= p1 <= north:
                return 0.0
            ends: tuple[float, ...] = (min(north, max(south, p1)),)
        elif foot is not None:
            ends = (min(north, max(south, foot)),)
        else:
            ends = (south, north)
        least = min(
            diameter * asin(min(1.0, sqrt(sin((p2 - p1) / 2) ** 2 + cos_p1 * cos(p2) * half_dl)))
            for p2 in ends
        )
        return max(0.0, least - 1e-6)

    return bound


@dataclass(frozen=True, slots=True)
class Candidate:
    """A registry entry that might fill a line: its type, what is free, where, when verified."""

    resource_id: str
    owner_city: str
    type: TypeRef
    available: Decimal
    lat: float
    lon: float
    verified_at: datetime


@dataclass(frozen=True, slots=True)
class Ranked:
    """A candidate that fits a line, with the reasons for its place in the order."""

    candidate: Candidate
    fit: int
    fresh: bool
    distance_km: float

    @property
    def key(self) -> tuple[int, bool, float, str]:
        """Return the sort key: fit, then verified freshness, then distance, then id for ties."""
        return (self.fit, not self.fresh, self.distance_km, self.candidate.resource_id)


def rank_candidates(
    requested: TypeRef,
    report_to: tuple[float, float],
    candidates: Iterable[Candidate],
    *,
    now: datetime,
    requesting_city: str,
    fresh_for: timedelta = DEFAULT_FRESH_FOR,
) -> list[Ranked]:
    """Return the candidates that may fill `requested`, best first (A-4: fit, freshness, distance).

    A city's own resources and entries with nothing available are left out; an entry verified
    longer ago than `fresh_for` still ranks, but after every fresh one of the same fit.
    """
    lat, lon = report_to
    ranked = [
        Ranked(
            candidate=c,
            fit=fit_rank(c.type, requested),
            fresh=now - c.verified_at <= fresh_for,
            distance_km=haversine_km(lat, lon, c.lat, c.lon),
        )
        for c in candidates
        if c.owner_city != requesting_city and c.available > 0 and satisfies(c.type, requested)
    ]
    ranked.sort(key=lambda r: r.key)
    return ranked


def nearness(ranked: Ranked) -> tuple[float, str]:
    """Return the order in which a city's candidates are nearest: distance, then id for ties."""
    return (ranked.distance_km, ranked.candidate.resource_id)


def shortlist(ranked: Sequence[Ranked], per_city: int) -> list[Ranked]:
    """Keep, of each city, its `per_city` best candidates and its nearest one, in the ranking's order.

    `rings` places a city by its nearest candidate, so the rings of a shortlist are the rings of
    the whole ranking, while each city is asked with the few entries that fit best.
    """
    if per_city < 1:
        raise ValueError("a shortlist keeps at least one candidate a city")
    nearest: dict[str, Ranked] = {}
    for r in ranked:
        city = r.candidate.owner_city
        if city not in nearest or nearness(r) < nearness(nearest[city]):
            nearest[city] = r
    seen: dict[str, int] = {}
    kept: list[Ranked] = []
    for r in ranked:
        city = r.candidate.owner_city
        place = seen.get(city, 0)
        seen[city] = place + 1
        if place < per_city or r is nearest[city]:
            kept.append(r)
    return kept


@dataclass(frozen=True, slots=True)
class Ring:
    """The cities asked together: all whose nearest fitting candidate lies in one distance band."""

    index: int
    max_km: float | None
    cities: tuple[str, ...]
    candidates: tuple[Ranked, ...]


def rings(ranked: Sequence[Ranked], bands_km: Sequence[float] = DEFAULT_RING_BANDS_KM) -> list[Ring]:
    """Group ranked candidates into rings, nearest first; each city sits in the ring of its nearest one.

    A city is asked once, in the ring of its nearest fitting candidate, and all its candidates go
    with it; rings with no city are left out, so ring 0 is always the first to ask.
    """
    if list(bands_km) != sorted(bands_km) or any(b <= 0 for b in bands_km):
        raise ValueError("ring bands must be positive and increasing")
    nearest: dict[str, float] = {}
    for r in ranked:
        city = r.candidate.owner_city
        nearest[city] = min(nearest.get(city, math.inf), r.distance_km)

    def band(distance: float) -> int:
        for i, edge in enumerate(bands_km):
            if distance <= edge:
                return i
        return len(bands_km)

    out: list[Ring] = []
    for i in range(len(bands_km) + 1):
        cities = tuple(sorted((c for c, d in nearest.items() if band(d) == i), key=lambda c: (nearest[c], c)))
        if not cities:
            continue
        members = tuple(r for r in ranked if r.candidate.owner_city in cities)
        out.append(Ring(len(out), bands_km[i] if i < len(bands_km) else None, cities, members))
    return out
