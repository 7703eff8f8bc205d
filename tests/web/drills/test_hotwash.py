"""The players' hot wash after ENDEX: once per person of a participating city, in the report."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from contracts.drills import HotwashCreate
from hub.drills import services
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden
from hub.kernel.models import User
from tests.conftest import AuthActions
from tests.hub.drills.conftest import controller, make_drill, played_to_endex

__all__ = ["controller", "make_drill"]  # the drill factories, shared with the service tests
FORM = HotwashCreate(self_rating=3, went_well="预警回执及时", to_improve="夜间值班席位人手不足")


def test_a_player_fills_the_hot_wash_once_and_it_joins_the_report(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User], make_drill: Callable[..., Drill]
) -> None:
    drill = played_to_endex(make_drill())
    make_user("ly-duty", "linyi")
    auth.login("ly-duty")
    page = f"/drills/{drill.id}"
    fields = {
        "csrf_token": auth.csrf(page),
        "self_rating": "4",
        "went_well": "接报迅速",
        "to_improve": "回执偏慢",
    }
    assert client.post(f"/drills/{drill.id}/hotwash", data=fields).status_code == 302
    shown = client.get(page).get_data(as_text=True)
    assert (
        "接报迅速" in shown
        and "[4/5]" in shown
        and 'action="/drills/' + str(drill.id) + '/hotwash"' not in shown
    )

    client.post(f"/drills/{drill.id}/hotwash", data={**fields, "went_well": "再交一次"})
    (form,) = services.hotwash_of(db.session, drill.id)
    assert form.went_well == "接报迅速" and form.city.slug == "linyi"
    assert "接报迅速" in services.aar_markdown(db.session, drill)


def test_the_hot_wash_waits_for_endex_and_is_for_the_participating_cities(
    make_drill: Callable[..., Drill], make_user: Callable[..., User]
) -> None:
    running = make_drill()
    services.start(db.session, running.id)
    linyi = Actor.for_user(make_user("ly-duty", "linyi"))
    with pytest.raises(Conflict):
        services.add_hotwash(db.session, linyi, running.id, FORM)
    drill = played_to_endex(make_drill())
    heze = Actor.for_user(make_user("hz-duty", "heze"))
    with pytest.raises(Forbidden):
        services.add_hotwash(db.session, heze, drill.id, FORM)
    services.add_hotwash(db.session, linyi, drill.id, FORM)
    with pytest.raises(Conflict):
        services.add_hotwash(db.session, linyi, drill.id, FORM)
    assert len(services.hotwash_of(db.session, drill.id)) == 1
