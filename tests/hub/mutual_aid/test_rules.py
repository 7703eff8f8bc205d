"""The pure mutual-aid rules: legal moves, the ledger, bookings, ranking and rings, and random play."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from contracts.mutual_aid import AidState
from contracts.resource_types import Grade, TypeRef
from hub.mutual_aid.rules import (
    BOOKED_STATES,
    DEPLOYED_STATES,
    EDGES,
    FINAL_STATES,
    RESERVING_STATES,
    TRANSITIONS,
    Action,
    Booking,
    Candidate,
    DoubleBooked,
    Holding,
    IllegalTransition,
    NotAParty,
    NotYourMove,
    OverCommitted,
    Role,
    RuleError,
    Unbalanced,
    act,
    check_line_fill,
    check_transition,
    haversine_km,
    next_state,
    overlaps,
    rank_candidates,
    rings,
)

CITIES = {
    city["slug"]: city
    for city in json.loads(
        (Path(__file__).resolve().parents[3] / "hub" / "data" / "huaihai_cities.json").read_text("utf-8")
    )["cities"]
}
SLUGS = sorted(CITIES)
NOW = datetime(2026, 7, 12, 8, 0, tzinfo=UTC)
D = Decimal


def centre(slug: str) -> tuple[float, float]:
    lon, lat = CITIES[slug]["centre"]
    return lat, lon


def booking(**changes: object) -> Booking:
    base = Booking(
        id="c1",
        resource_id="xz-pump-001",
        owner_city="xuzhou",
        requesting_city="linyi",
        quantity=D(4),
        start=NOW,
        end=NOW + timedelta(days=3),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# The transition table -----------------------------------------------------------------------------


def test_every_state_is_reachable_and_final_states_have_no_moves() -> None:
    reached = {AidState.OFFERED} | {to for _, to in EDGES}
    assert reached == set(AidState)
    assert all(frm not in FINAL_STATES for frm, _ in EDGES)
    assert not (RESERVING_STATES & DEPLOYED_STATES)


def test_an_illegal_move_names_from_and_to() -> None:
    with pytest.raises(IllegalTransition, match="cannot go from 'offered' to 'dispatched'") as caught:
        check_transition(AidState.OFFERED, AidState.DISPATCHED)
    assert "accept -> accepted" in str(caught.value)
    with pytest.raises(
        IllegalTransition, match=r"cannot go from 'returned' by 'cancel'.*'returned' is final"
    ):
        next_state(AidState.RETURNED, Action.CANCEL, Role.OWNER)
    with pytest.raises(IllegalTransition, match="from 'dispatched' by 'cancel'"):
        next_state(AidState.DISPATCHED, Action.CANCEL, Role.REQUESTER)
    check_transition(AidState.ARRIVED, AidState.EXTENSION_ASKED)


def test_each_side_takes_only_its_own_moves() -> None:
    assert next_state(AidState.OFFERED, Action.ACCEPT, Role.REQUESTER) is AidState.ACCEPTED
    with pytest.raises(NotYourMove, match="'accept' from 'offered' is for the requester, not the owner"):
        next_state(AidState.OFFERED, Action.ACCEPT, Role.OWNER)
    with pytest.raises(NotYourMove, match="for the owner"):
        next_state(AidState.ACCEPTED, Action.AUTHORISE, Role.REQUESTER)
    with pytest.raises(NotAParty, match="'heze' is neither"):
        act(booking(), Holding(D(10)), Action.ACCEPT, "heze")


def test_a_whole_lifecycle_with_an_extension_and_a_partial_return() -> None:
    holding = Holding(D(10))
    b = booking()
    b, holding = act(b, holding, Action.ACCEPT, "linyi")
    assert (b.state, holding.reserved, holding.available) == (AidState.ACCEPTED, D(4), D(6))
    with pytest.raises(RuleError, match="order number"):
        act(b, holding, Action.AUTHORISE, "xuzhou")
    b, holding = act(b, holding, Action.AUTHORISE, "xuzhou", order_number="XZ-2026-0712-01")
    b, holding = act(b, holding, Action.DISPATCH, "xuzhou")
    assert (holding.reserved, holding.deployed, b.dispatched) == (D(0), D(4), D(4))
    b, holding = act(b, holding, Action.ARRIVE, "linyi")
    b, holding = act(b, holding, Action.ASK_EXTENSION, "linyi")
    b, holding = act(b, holding, Action.ANSWER_EXTENSION, "xuzhou", new_end=b.end + timedelta(days=2))
    assert b.state is AidState.ARRIVED and b.end == NOW + timedelta(days=5)
    b, holding = act(b, holding, Action.REQUEST_RETURN, "xuzhou")
    b, holding = act(b, holding, Action.RELEASE, "linyi")
    assert holding.deployed == D(4), "a released resource is still out until the owner confirms"
    with pytest.raises(Unbalanced, match="but 4 were dispatched"):
        act(b, holding, Action.CONFIRM_RETURN, "xuzhou", returned=D(4), consumed=D(1))
    b, holding = act(b, holding, Action.CONFIRM_RETURN, "xuzhou", consumed=D(1), lost=D(1))
    assert (b.state, b.returned, b.consumed, b.lost) == (AidState.RETURNED, D(2), D(1), D(1))
    assert holding == Holding(on_hand=D(8))


def test_cancelling_or_expiring_a_hold_gives_it_back() -> None:
    holding = Holding(D(10))
    b, holding = act(booking(), holding, Action.ACCEPT, "linyi")
    cancelled, after = act(b, holding, Action.CANCEL, "xuzhou")
    assert cancelled.state is AidState.CANCELLED and after.available == D(10)
    expired, after = act(b, holding, Action.EXPIRE, None)
    assert expired.state is AidState.EXPIRED and after.available == D(10)
    with pytest.raises(NotYourMove, match="for the system"):
        act(b, holding, Action.EXPIRE, "linyi")


# The ledger ----------------------------------------------------------------------------------------


def test_the_ledger_never_holds_more_than_on_hand() -> None:
    holding = Holding(D(10)).reserve(D(7))
    with pytest.raises(OverCommitted, match="asked for 4, but only 3 is available") as caught:
        holding.reserve(D(4))
    assert caught.value.available == D(3)
    with pytest.raises(OverCommitted):
        Holding(D(5), reserved=D(3), deployed=D(3))
    with pytest.raises(RuleError, match="negative"):
        Holding(D(5), reserved=D(-1))
    with pytest.raises(RuleError, match="positive"):
        holding.reserve(D(0))
    with pytest.raises(RuleError, match="only 7 is reserved"):
        holding.deploy(D(8))


def test_a_line_is_not_filled_beyond_its_quantity_unless_a_surplus_is_accepted() -> None:
    check_line_fill(D(10), [D(4), D(6)])
    with pytest.raises(OverCommitted, match="asked for 11, but only 10"):
        check_line_fill(D(10), [D(4), D(7)])
    check_line_fill(D(10), [D(4), D(7)], allow_surplus=True)


# Bookings of teams, vehicles and experts -----------------------------------------------------------


def test_windows_overlap_half_open() -> None:
    a, b, c = NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    assert overlaps(a, c, b, c + timedelta(hours=1))
    assert not overlaps(a, b, b, c), "one ending when the other starts is no overlap"


def test_a_team_is_never_booked_twice_for_overlapping_times() -> None:
    team = dict(resource_id="zz-water-1", owner_city="zaozhuang", quantity=D(1))
    first = booking(id="a", requesting_city="linyi", state=AidState.ACCEPTED, **team)
    second = booking(id="b", requesting_city="xuzhou", start=NOW + timedelta(days=1), **team)
    holding = Holding(D(1), reserved=D(1))
    with pytest.raises(DoubleBooked, match="'zz-water-1' is already booked by 'a'"):
        act(second, Holding(D(1)), Action.ACCEPT, "xuzhou", bookable=True, others=[first])
    later = booking(
        id="c", requesting_city="xuzhou", start=first.end, end=first.end + timedelta(days=1), **team
    )
    accepted, _ = act(later, Holding(D(2)), Action.ACCEPT, "xuzhou", bookable=True, others=[first])
    assert accepted.state is AidState.ACCEPTED
    asked = booking(id="a", state=AidState.EXTENSION_ASKED, **team)
    longer = first.end + timedelta(hours=1)
    with pytest.raises(DoubleBooked, match="already booked by 'c'"):
        act(
            asked,
            holding,
            Action.ANSWER_EXTENSION,
            "zaozhuang",
            bookable=True,
            others=[accepted],
            new_end=longer,
        )
    cancelled = booking(id="d", state=AidState.CANCELLED, **team)
    act(second, Holding(D(1)), Action.ACCEPT, "xuzhou", bookable=True, others=[cancelled])


# Ranking and rings ---------------------------------------------------------------------------------


def test_haversine_between_city_centres() -> None:
    assert haversine_km(*centre("xuzhou"), *centre("xuzhou")) == 0
    distance = haversine_km(*centre("xuzhou"), *centre("linyi"))
    assert 130 < distance < 145
    assert haversine_km(*centre("linyi"), *centre("xuzhou")) == pytest.approx(distance)


def candidate(city: str, grade: Grade | None = Grade.MEDIUM, **changes: object) -> Candidate:
    lat, lon = centre(city)
    data: dict[str, object] = {
        "resource_id": f"{city}-water",
        "owner_city": city,
        "type": TypeRef("team.water", grade),
        "available": D(1),
        "lat": lat,
        "lon": lon,
        "verified_at": NOW - timedelta(days=1),
    }
    data.update(changes)
    return Candidate(**data)  # type: ignore[arg-type]


def test_candidates_rank_by_fit_then_freshness_then_distance() -> None:
    pool = [
        candidate("heze"),
        candidate("xuzhou"),
        candidate("zaozhuang", verified_at=NOW - timedelta(days=90)),
        candidate("lianyungang", grade=Grade.HEAVY),
        candidate("jining", grade=Grade.LIGHT),
        candidate("shangqiu", available=D(0)),
        candidate("linyi"),
        candidate("suqian", type=TypeRef("team.usar", Grade.HEAVY)),
    ]
    ranked = rank_candidates(
        TypeRef("team.water", Grade.MEDIUM), centre("linyi"), pool, now=NOW, requesting_city="linyi"
    )
    assert [r.candidate.owner_city for r in ranked] == ["xuzhou", "heze", "zaozhuang", "lianyungang"]
    assert [r.fit for r in ranked] == [0, 0, 0, 1]
    assert [r.fresh for r in ranked] == [True, True, False, True]


def test_rings_ask_the_nearest_cities_first() -> None:
    pool = [candidate(slug) for slug in SLUGS] + [candidate("xuzhou", resource_id="xuzhou-water-2")]
    ranked = rank_candidates(TypeRef("team.water"), centre("linyi"), pool, now=NOW, requesting_city="linyi")
    out = rings(ranked)
    assert [ring.index for ring in out] == list(range(len(out)))
    assert set(out[0].cities) == {"zaozhuang", "lianyungang"}
    assert "xuzhou" in out[1].cities
    asked = [city for ring in out for city in ring.cities]
    assert sorted(asked) == sorted(set(SLUGS) - {"linyi"}), "every other city is asked exactly once"
    assert sum(1 for r in out[1].candidates if r.candidate.owner_city == "xuzhou") == 2
    distances = [min(r.distance_km for r in ring.candidates) for ring in out]
    assert distances == sorted(distances)
    with pytest.raises(ValueError, match="increasing"):
        rings(ranked, bands_km=(200, 100))


# Random play ---------------------------------------------------------------------------------------

PUMP, TEAM = "xz-pump-001", "zz-team-1"
OWNERS = {PUMP: "xuzhou", TEAM: "zaozhuang"}
ON_HAND = {PUMP: D(10), TEAM: D(1)}


# Random actions mostly end an offer at once; play leans this way so deep states are reached too.
FORWARD: dict[AidState, tuple[Action, ...]] = {
    AidState.OFFERED: (Action.ACCEPT,),
    AidState.ACCEPTED: (Action.AUTHORISE,),
    AidState.AUTHORISED: (Action.DISPATCH,),
    AidState.DISPATCHED: (Action.ARRIVE,),
    AidState.ARRIVED: (Action.ASK_EXTENSION, Action.REQUEST_RETURN, Action.RELEASE),
    AidState.EXTENSION_ASKED: (Action.ANSWER_EXTENSION, Action.RELEASE),
    AidState.RETURN_ASKED: (Action.REFUSE_RETURN, Action.RELEASE),
    AidState.RELEASED: (Action.CONFIRM_RETURN,),
}


@dataclass(frozen=True)
class Step:
    """One move in random play: a random action, or (action None) one that is legal now."""

    index: int
    action: Action | None
    pick: int
    who: str
    stranger: str
    order_number: str
    extend_hours: int
    consumed: int
    lost: int
    unbalanced: bool

    def resolve(self, booking: Booking) -> tuple[Action, str | None]:
        """Return the action and the acting city (None: a timer) for `booking`."""
        legal = sorted((a for s, a in TRANSITIONS if s is booking.state), key=lambda a: a.value)
        onward = FORWARD.get(booking.state, ())
        if self.action is not None:
            action = self.action
        elif onward and self.pick < 5:
            action = onward[self.pick % len(onward)]
        else:
            action = legal[self.pick % len(legal)] if legal else Action.CANCEL
        who = self.who
        if who == "auto":
            roles = TRANSITIONS.get((booking.state, action), (booking.state, frozenset({Role.SYSTEM})))[1]
            who = sorted(roles)[self.pick % len(roles)].value
        cities = {"owner": booking.owner_city, "requester": booking.requesting_city, "system": None}
        return action, cities.get(who, self.stranger)


offers = st.lists(
    st.tuples(
        st.sampled_from([PUMP, TEAM]),
        st.sampled_from(SLUGS),
        st.integers(1, 4),
        st.integers(0, 72),
        st.integers(1, 48),
    ),
    min_size=1,
    max_size=6,
)
steps = st.lists(
    st.builds(
        Step,
        # Half the moves go to the first two bookings, so some of them get far along.
        index=st.one_of(st.integers(0, 1), st.integers(0, 7)),
        action=st.one_of(st.none(), st.none(), st.sampled_from(list(Action))),
        pick=st.integers(0, 7),
        who=st.sampled_from(["auto"] * 6 + ["owner", "requester", "system", "stranger"]),
        stranger=st.sampled_from(SLUGS),
        order_number=st.sampled_from(["", "XZ-0001", "XZ-0002", "ZZ-0001"]),
        extend_hours=st.integers(-4, 48),
        consumed=st.integers(0, 4),
        lost=st.integers(0, 4),
        unbalanced=st.booleans(),
    ),
    min_size=20,
    max_size=100,
)


def _world(specs: list[tuple[str, str, int, int, int]]) -> list[Booking]:
    world = []
    for number, (resource, requester, quantity, start, hours) in enumerate(specs):
        owner = OWNERS[resource]
        world.append(
            Booking(
                id=f"b{number}",
                resource_id=resource,
                owner_city=owner,
                # A city never asks itself; the one a draw would pick asks instead of its neighbour.
                requesting_city=requester if requester != owner else "linyi",
                quantity=D(quantity) if resource == PUMP else D(1),
                start=NOW + timedelta(hours=start),
                end=NOW + timedelta(hours=start + hours),
            )
        )
    return world


def _check_invariants(world: list[Booking], holdings: dict[str, Holding]) -> None:
    for resource, holding in holdings.items():
        mine = [b for b in world if b.resource_id == resource]
        assert holding.reserved == sum((b.quantity for b in mine if b.state in RESERVING_STATES), D(0))
        assert holding.deployed == sum((b.dispatched for b in mine if b.state in DEPLOYED_STATES), D(0))
        gone = sum((b.consumed + b.lost for b in mine if b.state is AidState.RETURNED), D(0))
        assert holding.on_hand == ON_HAND[resource] - gone
        assert holding.reserved >= 0
        assert holding.deployed >= 0
        assert holding.reserved + holding.deployed <= holding.on_hand
        for b in mine:
            if b.state is AidState.RETURNED:
                assert b.returned + b.consumed + b.lost == b.dispatched
        if resource == TEAM:
            live = [b for b in mine if b.state in BOOKED_STATES]
            for i, a in enumerate(live):
                for other in live[i + 1 :]:
                    assert not overlaps(a.start, a.end, other.start, other.end), (a, other)
    for b in world:
        path = (*b.history, b.state)
        for frm, to in itertools.pairwise(path):
            assert (frm, to) in EDGES


@settings(max_examples=200, deadline=None)
@given(specs=offers, plays=steps)
def test_random_play_by_random_cities_keeps_every_invariant(
    specs: list[tuple[str, str, int, int, int]], plays: list[Step]
) -> None:
    world = _world(specs)
    holdings = {resource: Holding(on_hand) for resource, on_hand in ON_HAND.items()}
    for step in plays:
        index = step.index % len(world)
        before = world[index]
        others = [b for b in world if b.id != before.id]
        dispatched = before.dispatched
        consumed = min(D(step.consumed), dispatched)
        lost = min(D(step.lost), dispatched - consumed)
        action, city = step.resolve(before)
        try:
            after, holding = act(
                before,
                holdings[before.resource_id],
                action,
                city,
                bookable=before.resource_id == TEAM,
                others=others,
                order_number=step.order_number or None,
                new_end=before.end + timedelta(hours=step.extend_hours) if step.extend_hours else None,
                returned=dispatched - consumed - lost + (1 if step.unbalanced else 0),
                consumed=consumed,
                lost=lost,
            )
        except NotAParty:
            assert city not in (before.owner_city, before.requesting_city, None)
        except IllegalTransition:
            assert (before.state, action) not in TRANSITIONS
        except NotYourMove as refused:
            assert refused.role not in TRANSITIONS[(before.state, action)][1]
        except OverCommitted as refused:
            assert refused.asked > refused.available
        except DoubleBooked:
            assert before.resource_id == TEAM
        except Unbalanced:
            assert action is Action.CONFIRM_RETURN and step.unbalanced
        except RuleError as refused:
            assert "order number" in str(refused) or "later than the current end" in str(refused)
        else:
            role = before.role_of(city)
            to, allowed = TRANSITIONS[(before.state, action)]
            assert after.state is to and role in allowed
            event(f"reached {to.value}")
            check_transition(before.state, after.state)
            world[index] = after
            holdings[before.resource_id] = holding
        _check_invariants(world, holdings)
