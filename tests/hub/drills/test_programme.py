"""The drill programme: per member city and year, drills planned (approved) and held (played to
ENDEX) against the 95 % drill rate, on a page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask.testing import FlaskClient

from hub.drills import services
from hub.drills.models import Drill
from hub.drills.rules import DISPLAY_TZ
from hub.extensions import db
from hub.kernel.models import User
from hub.kernel.types import utcnow
from tests.conftest import AuthActions
from tests.hub.drills.conftest import played_to_endex


def _year() -> int:
    return utcnow().astimezone(DISPLAY_TZ).year


def _programme(make_drill: Callable[..., Drill]) -> dict[str, services.ProgrammeLine]:
    played = played_to_endex(make_drill(name="已演练"))
    make_drill(name="待演练")  # approved, STARTEX in an hour
    make_drill(name="草案", approved=False)
    start = utcnow().replace(microsecond=0) - timedelta(days=400)
    played_to_endex(make_drill(name="去年", startex=start, endex=start + timedelta(hours=2)))
    lines = {line.row.city: line for line in services.programme(db.session, _year())}
    assert played.id in {d.id for d in lines["linyi"].drills}
    return lines


def test_each_city_counts_its_approved_drills_and_those_held_in_the_year(
    make_drill: Callable[..., Drill],
) -> None:
    lines = _programme(make_drill)
    assert len(lines) == 10  # every member city, with or without drills
    xuzhou = lines["xuzhou"].row
    assert (xuzhou.planned, xuzhou.held) == (2, 1)
    assert xuzhou.rate == 0.5 and xuzhou.meets_target is False and xuzhou.shortfall == 1
    assert [d.name for d in lines["linyi"].drills] == ["已演练", "待演练"]
    heze = lines["heze"].row
    assert (heze.planned, heze.held, heze.meets_target) == (0, 0, None)


def test_the_programme_page_shows_each_city_against_the_target(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User], make_drill: Callable[..., Drill]
) -> None:
    _programme(make_drill)
    make_user("hz-duty", "heze")
    auth.login("hz-duty")
    page = client.get(f"/drills/programme?year={_year()}").get_data(as_text=True)
    assert 'data-city="xuzhou" class="flagged"' in page
    assert "已演练" in page and "待演练" in page and "草案" not in page and "去年" not in page
    assert client.get("/drills/programme?year=1800").status_code == 404
