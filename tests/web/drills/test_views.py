"""The drill pages: plan with a CSV MSEL, control play, players see no expected actions before ENDEX."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta

from flask.testing import FlaskClient

from hub.drills import services
from hub.drills.models import Drill, DrillStatus
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import Role, User
from hub.kernel.types import utcnow
from tests.conftest import AuthActions
from tests.hub.drills.conftest import MSEL_CSV


def _form(auth: AuthActions, path: str, **fields: object) -> dict[str, object]:
    return {"csrf_token": auth.csrf(path), **fields}


def _create(client: FlaskClient, auth: AuthActions, msel: str = MSEL_CSV):  # type: ignore[no-untyped-def]
    start = (utcnow() + timedelta(hours=8, minutes=30)).strftime("%Y-%m-%dT%H:%M")
    data = _form(
        auth,
        "/drills/new",
        name="沂沭河防汛桌面推演",
        drill_type="tabletop",
        scope="combined",
        plans="防汛应急预案",
        participating_cities=["xuzhou", "linyi"],
        objectives="O1 信息报送\nO1.1 接报",
        evaluators="",
        startex=start,
        duration_minutes="120",
        time_scale="60",
        msel=(io.BytesIO(msel.encode()), "msel.csv"),
    )
    return client.post("/drills/new", data=data, content_type="multipart/form-data")


def test_a_coordinator_plans_a_drill_with_a_csv_msel(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User]
) -> None:
    make_user("controller", "xuzhou")
    auth.login("controller")
    response = _create(client, auth)
    assert response.status_code == 302, response.get_data(as_text=True)
    drill = db.session.query(Drill).one()
    assert (drill.status, len(drill.injects), drill.time_scale) == (DrillStatus.DRAFT, 4, 60.0)
    assert "演练" in client.get("/drills").get_data(as_text=True)
    exported = client.get(f"/drills/{drill.id}/msel.csv")
    assert exported.status_code == 200 and "上游水位超警戒" in exported.get_data(as_text=True)


def test_a_refused_msel_names_its_line(client: FlaskClient, auth: AuthActions, make_user) -> None:
    make_user("controller", "xuzhou")
    auth.login("controller")
    response = _create(client, auth, "number,offset,city,channel,message\r\n1,0:00:00,linyi,fax,水位\r\n")
    assert response.status_code == 200
    assert "row 2, channel" in response.get_data(as_text=True)
    assert db.session.query(Drill).count() == 0


def test_controllers_start_and_pause_and_players_see_no_expected_actions(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User]
) -> None:
    make_user("controller", "xuzhou")
    player = make_user("player", "linyi", Role.DUTY_OFFICER)
    auth.login("controller")
    _create(client, auth)
    drill = db.session.query(Drill).one()
    page = f"/drills/{drill.id}"
    for control in ("approve", "start"):
        assert client.post(f"{page}/{control}", data=_form(auth, page)).status_code == 302
    db.session.expire_all()
    assert db.session.get(Drill, drill.id).status == DrillStatus.RUNNING
    services.deliver(db.session, drill.id, 1)
    db.session.commit()
    assert client.post(f"{page}/pause", data=_form(auth, page)).status_code == 302
    controller_view = client.get(page).get_data(as_text=True)
    assert "阅知 ≤ 600 s" in controller_view and "继续" in controller_view
    auth.logout()

    auth.login("player")
    player_view = client.get(page).get_data(as_text=True)
    assert "上游水位超警戒" in player_view
    assert "阅知 ≤" not in player_view and "临沂河段出现管涌" not in player_view
    assert 'id="controls"' not in player_view
    assert client.post(f"{page}/resume", data=_form(auth, page)).status_code == 403
    client.post(f"{page}/injects/1/read", data=_form(auth, page))
    assert services.unread_notices(db.session, player.city_id) == []
    api = client.get(f"/api/v1/drills/{drill.id}/injects").get_json()
    assert [i["number"] for i in api["injects"]] == [1]
    assert "expected_action" not in api["injects"][0]
    auth.logout()

    services.end_now(db.session, Actor.for_user(db.session.get(User, drill.created_by_id)), drill.id)
    services.draft_aar(db.session, drill.id)
    db.session.commit()
    auth.login("player")
    after = client.get(page).get_data(as_text=True)
    assert "阅知 ≤ 600 s" in after and 'id="aar"' in after


def test_a_delivered_exercise_notice_shows_on_the_players_desk(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User]
) -> None:
    make_user("controller", "xuzhou")
    make_user("player", "linyi", Role.DUTY_OFFICER)
    auth.login("controller")
    _create(client, auth)
    drill = db.session.query(Drill).one()
    page = f"/drills/{drill.id}"
    for control in ("approve", "start"):
        client.post(f"{page}/{control}", data=_form(auth, page))
    db.session.expire_all()
    assert services.deliver(db.session, drill.id, 1).outcome == "delivered"
    db.session.commit()
    auth.logout()
    auth.login("player")
    desk = client.get("/").get_data(as_text=True)
    assert "【演练】上游水位超警戒" in desk


def test_an_evaluator_records_a_rated_observation(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User]
) -> None:
    make_user("controller", "xuzhou")
    auth.login("controller")
    _create(client, auth)
    drill = db.session.query(Drill).one()
    page = f"/drills/{drill.id}"
    response = client.post(
        f"{page}/observations", data=_form(auth, page, task="O1 O1.1", rating="S", text="接报用时偏长")
    )
    assert response.status_code == 302
    observation = services.observations(db.session, drill.id)[0]
    assert (observation.objective, observation.critical_task, observation.rating) == ("O1", "O1.1", "S")
    assert "接报用时偏长" in client.get(page).get_data(as_text=True)
