"""The services as a whole, played by random cities against a real database (hypothesis stateful).

Four cities each hold pumps (10) and a water rescue team; Linyi and Heze ask for pumps and a team
over overlapping windows, and Linyi runs an exercise request too. Random cities (and the hub's
timer) offer, accept, decline, withdraw, authorise, dispatch, cancel, expire, arrive, ask and
answer extensions, ask for and refuse returns, release and confirm returns. After every step:

- a step the services allowed is a legal move of `rules.TRANSITIONS` by the side that took it,
  and a step they refused changed nothing;
- each ledger holds: 0 <= reserved, deployed; reserved + deployed <= on hand; reserved is the sum
  of the live holds and deployed the sum of what is out, exercise commitments never counted;
  on hand is what it was less what returns reported consumed or lost;
- every returned commitment has returned + consumed + lost = dispatched;
- no team is booked twice for overlapping times.

Runs on PostgreSQL too with HUB_TEST_DATABASE_URL (the exclusion constraint then refuses a
double booking as well).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from contracts.mutual_aid import AidState
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import ServiceError
from hub.kernel.models import User
from hub.mutual_aid import rules, services
from hub.mutual_aid.models import AidCommitment, AidResource
from hub.mutual_aid.rules import Action
from tests.hub.mutual_aid.factories import CONTACT, entry, line

CITIES = ("xuzhou", "zaozhuang", "linyi", "heze")
# Sequences played (40 steps each); more with HUB_TEST_AID_EXAMPLES for a deeper search.
EXAMPLES = int(os.environ.get("HUB_TEST_AID_EXAMPLES", "20"))
PUMPS = Decimal(10)
# The steps a person (or the timer) takes, each with how the service is called.
STEPS = (
    Action.ACCEPT,
    Action.DECLINE,
    Action.WITHDRAW,
    Action.EXPIRE,
    Action.AUTHORISE,
    Action.DISPATCH,
    Action.ARRIVE,
    Action.ASK_EXTENSION,
    Action.ANSWER_EXTENSION,
    Action.REQUEST_RETURN,
    Action.REFUSE_RETURN,
    Action.RELEASE,
    Action.CONFIRM_RETURN,
    Action.CANCEL,
)
_SIMPLE = {
    Action.ACCEPT: services.accept,
    Action.DECLINE: services.decline,
    Action.WITHDRAW: services.withdraw,
    Action.ARRIVE: services.arrive,
    Action.ASK_EXTENSION: services.ask_extension,
    Action.REQUEST_RETURN: services.request_return,
    Action.REFUSE_RETURN: services.refuse_return,
    Action.RELEASE: services.release,
    Action.CANCEL: services.cancel,
}


class AidLifecycle(RuleBasedStateMachine):
    """Random cities acting on offers and commitments through the services, one commit per step."""

    commitments = Bundle("commitments")
    actors: ClassVar[dict[str, Actor]] = {}

    def __init__(self) -> None:
        super().__init__()
        tag = uuid.uuid4().hex[:8]
        self.pumps: dict[str, int] = {}
        self.teams: dict[str, int] = {}
        for slug in CITIES:
            actor = self.actors[slug]
            pumps = services.register_entry(
                db.session, actor, entry(owner=slug, external_id=f"pumps-{tag}", quantity=PUMPS)
            )
            team = services.register_entry(
                db.session, actor, entry(owner=slug, external_id=f"team-{tag}", type_code="team.water")
            )
            self.pumps[slug], self.teams[slug] = pumps.id, team.id
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        self.lines: list[tuple[int, bool]] = []  # (line id, asks for a team)
        for slug, needed_by, exercise in (
            ("linyi", start, False),
            ("heze", start + timedelta(hours=24), False),  # overlaps Linyi's 48 hours
            ("linyi", start, True),
        ):
            request = services.create_request(
                db.session,
                self.actors[slug],
                title=f"{slug} {tag}",
                lines=[
                    line("P", quantity=8, needed_by=needed_by),
                    line("T", type_code="team.water", quantity=1, needed_by=needed_by),
                ],
                contact=CONTACT,
                exercise=exercise,
            )
            self.lines += [(request.lines[0].id, False), (request.lines[1].id, True)]
        db.session.commit()
        self.resources = [*self.pumps.values(), *self.teams.values()]
        self.on_hand = {r: (PUMPS if r in self.pumps.values() else Decimal(1)) for r in self.resources}

    @rule(
        target=commitments,
        line=st.integers(0, 5),
        owner=st.sampled_from(("xuzhou", "zaozhuang", "xuzhou", "zaozhuang", "linyi", "heze")),
        quantity=st.integers(1, 5),
    )
    def offer(self, line: int, owner: str, quantity: int) -> int:
        line_id, team = self.lines[line]
        resource_id = (self.teams if team else self.pumps)[owner]
        try:
            made = services.make_offer(
                db.session, self.actors[owner], line_id, resource_id, Decimal(1 if team else quantity)
            )
        except ServiceError:
            db.session.rollback()
            return -1
        db.session.commit()
        return made.id

    @rule(
        commitment_id=commitments,
        action=st.sampled_from(STEPS),
        who=st.sampled_from(("owner", "requester", "other", "timer")),
        data=st.data(),
    )
    def step(self, commitment_id: int, action: Action, who: str, data: st.DataObject) -> None:
        """Any step by anyone: most are refused, and a refusal must change nothing."""
        self._take(commitment_id, action, who, data)

    @rule(commitment_id=commitments, data=st.data())
    def advance(self, commitment_id: int, data: st.DataObject) -> None:
        """A step the rules allow from where the commitment stands, by a side allowed to take it."""
        if commitment_id < 0:
            return
        commitment = db.session.get(AidCommitment, commitment_id)
        assert commitment is not None
        moves = sorted(
            (action, role)
            for (state, action), (_, roles) in rules.TRANSITIONS.items()
            if state.value == commitment.state
            for role in roles
        )
        if not moves:
            return
        action, role = data.draw(st.sampled_from(moves), label="move")
        who = {rules.Role.OWNER: "owner", rules.Role.REQUESTER: "requester", rules.Role.SYSTEM: "timer"}[role]
        self._take(commitment_id, action, who, data)

    def _take(self, commitment_id: int, action: Action, who: str, data: st.DataObject) -> None:
        if commitment_id < 0:
            return
        commitment = db.session.get(AidCommitment, commitment_id)
        assert commitment is not None
        before = AidState(commitment.state)
        parties = {commitment.owner_city.slug, commitment.requesting_city.slug}
        city = {
            "owner": commitment.owner_city.slug,
            "requester": commitment.requesting_city.slug,
            "other": next(c for c in CITIES if c not in parties),
            "timer": None,
        }[who]
        actor = services.TIMER if city is None else self.actors[city]
        try:
            self._call(commitment, action, actor, data)
        except ServiceError:
            db.session.rollback()
            db.session.expire_all()
            assert AidState(db.session.get(AidCommitment, commitment_id).state) is before  # type: ignore[union-attr]
            return
        db.session.commit()
        db.session.expire_all()
        after = AidState(db.session.get(AidCommitment, commitment_id).state)  # type: ignore[union-attr]
        role = rules.Role.SYSTEM if city is None else services.role_in(actor, commitment, action.value)
        # The services moved it exactly as the rules allow this side to.
        assert rules.next_state(before, action, role) is after

    def _call(self, commitment: AidCommitment, action: Action, actor: Actor, data: st.DataObject) -> None:
        if action in _SIMPLE:
            _SIMPLE[action](db.session, actor, commitment.id)
        elif action is Action.EXPIRE:
            services.expire(db.session, actor, commitment.id)
        elif action is Action.AUTHORISE:
            services.authorise(db.session, actor, commitment.id, f"ORD-{commitment.id}")
        elif action is Action.DISPATCH:
            services.dispatch(db.session, actor, commitment.id)
        elif action is Action.ANSWER_EXTENSION:
            hours = data.draw(st.one_of(st.none(), st.integers(1, 96)), label="extend by hours")
            new_end = None if hours is None else commitment.end_at + timedelta(hours=hours)
            services.answer_extension(db.session, actor, commitment.id, new_end)
        elif action is Action.CONFIRM_RETURN:
            out = int(commitment.dispatched)
            consumed = data.draw(st.integers(0, out), label="consumed")
            lost = data.draw(st.integers(0, out - consumed), label="lost")
            counts = services.ReturnCounts(consumed=Decimal(consumed), lost=Decimal(lost))
            services.confirm_return(db.session, actor, commitment.id, counts)
            self.on_hand[commitment.resource_id] -= consumed + lost

    @invariant()
    def ledgers_hold(self) -> None:
        db.session.expire_all()
        rows = db.session.scalars(
            sa.select(AidCommitment).where(AidCommitment.resource_id.in_(self.resources))
        )
        commitments = list(rows)
        for resource_id in self.resources:
            resource = db.session.get(AidResource, resource_id)
            assert resource is not None
            mine = [c for c in commitments if c.resource_id == resource_id and not c.exercise]
            held = sum((c.quantity for c in mine if AidState(c.state) in rules.RESERVING_STATES), Decimal(0))
            out = sum((c.dispatched for c in mine if AidState(c.state) in rules.DEPLOYED_STATES), Decimal(0))
            assert resource.reserved >= 0 and resource.deployed >= 0
            assert resource.reserved + resource.deployed <= resource.on_hand
            assert (resource.reserved, resource.deployed) == (held, out)
            assert resource.on_hand == self.on_hand[resource_id]
        for c in commitments:
            if c.state == AidState.RETURNED.value:
                assert c.returned + c.consumed + c.lost == c.dispatched
            if c.exercise:
                continue
            for other in commitments:
                if (
                    other.id < c.id
                    and other.resource_id == c.resource_id
                    and c.bookable
                    and not other.exercise
                    and AidState(c.state) in rules.BOOKED_STATES
                    and AidState(other.state) in rules.BOOKED_STATES
                ):
                    assert not rules.overlaps(c.start_at, c.end_at, other.start_at, other.end_at), (c, other)


def test_random_cities_never_break_the_rules_or_the_ledger(
    app: Flask, make_user: Callable[..., User]
) -> None:
    AidLifecycle.actors = {slug: Actor.for_user(make_user(f"sm-{slug}", slug)) for slug in CITIES}
    run_state_machine_as_test(
        AidLifecycle,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
