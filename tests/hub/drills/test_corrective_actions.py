"""Corrective actions: a drill's evaluation ends in action items of the shared engine, each with an
owner city, a due day and the plan it revises, chased by the engine like a meeting's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from contracts.drills import CorrectiveActionCreate
from hub.action_items import rules as action_rules
from hub.action_items import services as action_items
from hub.config import Settings
from hub.drills import services
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput
from hub.kernel.models import FlowRequest, User
from hub.kernel.types import utcnow
from tests.hub.drills.conftest import played_to_endex


def _action(**overrides: Any) -> CorrectiveActionCreate:
    data: dict[str, Any] = {
        "owner_city": "linyi",
        "title": "【演练】修订堤防巡查分工",
        "detail": "管涌报告晚了 25 分钟：明确巡堤队伍向值班室报告的时限。",
        "due_on": action_rules.local_day(utcnow()) + timedelta(days=14),
        "plan": "防汛应急预案",
        "objective": "O1",
    }
    data.update(overrides)
    return CorrectiveActionCreate.model_validate(data)


@pytest.fixture
def evaluator(make_user: Callable[..., User]) -> Actor:
    return Actor.for_user(make_user("evaluator", "xuzhou"))


def test_an_evaluator_opens_an_action_item_owned_by_a_city_and_linked_to_its_plan(
    make_drill: Callable[..., Drill], evaluator: Actor
) -> None:
    drill = played_to_endex(make_drill())
    services.add_corrective_action(db.session, evaluator, drill.id, _action())
    db.session.commit()

    (found,) = services.corrective_actions(db.session, drill)
    assert found.plan == "防汛应急预案" and found.objective == "O1"
    item = found.item
    assert (item.origin, item.origin_id, item.context_id) == ("drill", drill.id, drill.public_id)
    assert item.owner_city.slug == "linyi" and item.chair_city.slug == "xuzhou"
    assert item.title == "修订堤防巡查分工"  # the revision is real work: no exercise prefix
    assert item.state == "open" and not found.overdue
    assert item in action_items.owned_by(db.session, item.owner_city_id)


def test_the_engine_chases_a_corrective_action_once_it_is_late(
    make_drill: Callable[..., Drill], evaluator: Actor, settings: Settings
) -> None:
    drill = played_to_endex(make_drill())
    due = action_rules.local_day(utcnow())
    services.add_corrective_action(db.session, evaluator, drill.id, _action(due_on=due))
    db.session.commit()
    (found,) = services.corrective_actions(db.session, drill)
    late = action_rules.overdue_from(due) + timedelta(days=1, hours=10)

    action_items.schedule_reminders(db.session, late, settings)
    action_items.schedule_reminders(db.session, late, settings)
    db.session.commit()
    asked = db.session.scalars(
        sa.select(FlowRequest).where(FlowRequest.flow_name == action_items.REMIND)
    ).all()
    mine = [r for r in asked if r.parameters["action_item_id"] == found.item.id]
    assert mine and len({r.key for r in mine}) == len(mine)
    assert any(r.parameters["kind"] == "overdue" for r in mine)
    assert found.item in action_items.overdue_for(db.session, found.item.owner_city_id, late)
    assert services.corrective_actions(db.session, drill, late)[0].overdue


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"plan": "地震应急预案"}, "unknown_plan"),
        ({"owner_city": "heze"}, "not_participating"),
        ({"objective": "O9"}, "unknown_objective"),
    ],
)
def test_an_action_outside_the_drill_is_refused_and_nothing_is_opened(
    make_drill: Callable[..., Drill], evaluator: Actor, change: dict[str, Any], refusal: str
) -> None:
    drill = played_to_endex(make_drill())
    with pytest.raises(InvalidInput) as refused:
        services.add_corrective_action(db.session, evaluator, drill.id, _action(**change))
    assert refused.value.reason == refusal
    assert services.corrective_actions(db.session, drill) == []


def test_a_due_day_already_past_is_refused(make_drill: Callable[..., Drill], evaluator: Actor) -> None:
    drill = played_to_endex(make_drill())
    with pytest.raises(InvalidInput):
        services.add_corrective_action(db.session, evaluator, drill.id, _action(due_on=date(2020, 1, 1)))


def test_players_and_drills_in_play_cannot_set_corrective_actions(
    make_drill: Callable[..., Drill], evaluator: Actor, make_user: Callable[..., User]
) -> None:
    running = make_drill()
    services.start(db.session, running.id)
    with pytest.raises(Conflict):
        services.add_corrective_action(db.session, evaluator, running.id, _action())
    drill = played_to_endex(make_drill())
    player = Actor.for_user(make_user("ly-coord", "linyi"))
    with pytest.raises(Forbidden):
        services.add_corrective_action(db.session, player, drill.id, _action())
