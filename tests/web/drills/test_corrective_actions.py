"""The corrective-action form of an ended drill: opened by an evaluator, refused in the reader's
language when it names a plan the drill does not exercise, and not offered to players."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask.testing import FlaskClient

from hub.action_items import rules as action_rules
from hub.drills import services
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.models import User
from hub.kernel.types import utcnow
from tests.conftest import AuthActions
from tests.hub.drills.conftest import controller, make_drill, played_to_endex

__all__ = ["controller", "make_drill"]  # the drill factories, shared with the service tests


def test_an_evaluator_opens_a_corrective_action_from_the_drill_page(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User], make_drill: Callable[..., Drill]
) -> None:
    drill = played_to_endex(make_drill())
    make_user("evaluator", "xuzhou")
    auth.login("evaluator")
    page = f"/drills/{drill.id}"
    due = (action_rules.local_day(utcnow()) + timedelta(days=30)).isoformat()
    fields = {
        "csrf_token": auth.csrf(page),
        "title": "明确管涌报告时限",
        "owner_city": "linyi",
        "due_on": due,
        "plan": "防汛应急预案",
        "objective": "O1",
        "detail": "巡堤队伍发现险情 10 分钟内报值班室。",
    }
    answer = client.post(f"/drills/{drill.id}/corrective-actions", data=fields)
    assert answer.status_code == 302
    shown = client.get(page).get_data(as_text=True)
    assert "明确管涌报告时限" in shown and due in shown and "防汛应急预案" in shown
    (found,) = services.corrective_actions(db.session, drill)
    assert found.item.owner_city.slug == "linyi"

    refused = client.post(
        f"/drills/{drill.id}/corrective-actions",
        data={**fields, "plan": "地震应急预案"},
        follow_redirects=True,
    )
    assert refused.status_code == 200
    assert len(services.corrective_actions(db.session, drill)) == 1


def test_players_are_not_offered_the_form_and_cannot_post_it(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User], make_drill: Callable[..., Drill]
) -> None:
    drill = played_to_endex(make_drill())
    make_user("ly-coord", "linyi")
    auth.login("ly-coord")
    page = f"/drills/{drill.id}"
    assert "corrective_action" not in client.get(page).get_data(as_text=True).replace("-", "_")
    fields = {
        "csrf_token": auth.csrf(page),
        "title": "擅自立项",
        "owner_city": "linyi",
        "due_on": (action_rules.local_day(utcnow()) + timedelta(days=3)).isoformat(),
        "plan": "防汛应急预案",
    }
    client.post(f"/drills/{drill.id}/corrective-actions", data=fields)
    assert services.corrective_actions(db.session, drill) == []
