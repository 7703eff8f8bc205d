"""The after-action report's narrative on the drill page and under /api/v1: the evaluators edit it
in revisions, the lead evaluator finalises it, the page and the exports say draft or final, and
players and other cities are refused (403) with nothing changed; in both languages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from hub.drills import services
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.models import User
from tests.conftest import AuthActions
from tests.hub.drills.conftest import controller, make_drill, played_to_endex

__all__ = ["controller", "make_drill"]  # the drill factories, shared with the service tests
TEAM = [{"name": "lead", "city": "xuzhou"}, {"name": "second", "city": "linyi"}]


@pytest.fixture
def reported(make_drill: Callable[..., Drill], make_user: Callable[..., User]) -> Drill:
    """Return a drill played to ENDEX with its figures drafted; its evaluators have accounts."""
    drill = played_to_endex(make_drill(evaluators=TEAM))
    services.draft_aar(db.session, drill.id)
    db.session.commit()
    make_user("lead", "xuzhou")
    make_user("second", "linyi")
    return drill


def _fields(auth: AuthActions, page: str, base: int, summary: str) -> dict[str, str]:
    return {
        "csrf_token": auth.csrf(page),
        "base_revision": str(base),
        "summary": summary,
        "rating-O1": "M",
        "strengths-O1": "值班室阅知迅速",
        "improvements-O1": "管涌报告晚了 25 分钟",
    }


def test_evaluators_edit_on_the_page_and_the_lead_finalises(
    client: FlaskClient, auth: AuthActions, reported: Drill
) -> None:
    page = f"/drills/{reported.id}"
    auth.login("second")
    shown = client.get(page).get_data(as_text=True)
    assert 'id="aar-form"' in shown and "演练评估报告（草稿）" in shown
    assert 'id="aar-finalise"' not in shown  # the second evaluator is not the lead
    saved = client.post(f"{page}/aar", data=_fields(auth, page, 0, "各市接报及时。"), follow_redirects=True)
    assert saved.status_code == 200 and "评估报告已保存（第 1 版）" in saved.get_data(as_text=True)
    assert client.post(f"{page}/aar/finalise", data={"csrf_token": auth.csrf(page)}).status_code == 403
    auth.logout()

    auth.login("lead")
    # A save made from an older revision is refused on the page, and changes nothing.
    stale = client.post(f"{page}/aar", data=_fields(auth, page, 0, "旧版本"), follow_redirects=True)
    assert "已被他人保存为新版本" in stale.get_data(as_text=True)
    shown = client.get(page).get_data(as_text=True)
    assert "各市接报及时。" in shown and "勉强完成，存在重大问题" in shown and 'id="aar-finalise"' in shown
    client.post(f"{page}/aar", data=_fields(auth, page, 1, "各市接报及时，处置衔接不畅。"))
    assert [r.number for r in services.aar_report(reported).revisions] == [1, 2]

    assert client.post(f"{page}/aar/finalise", data={"csrf_token": auth.csrf(page)}).status_code == 302
    final = client.get(page).get_data(as_text=True)
    assert "演练评估报告（定稿）" in final and "lead 于" in final and "定稿（第 2 版）" in final
    assert 'id="aar-form"' not in final and 'id="aar-finalise"' not in final
    refused = client.post(f"{page}/aar", data=_fields(auth, page, 2, "再改"), follow_redirects=True)
    assert "评估报告已定稿，不能再修改" in refused.get_data(as_text=True)
    markdown = client.get(f"{page}/aar.md").get_data(as_text=True)
    assert "（定稿）" in markdown.splitlines()[0] and "各市接报及时，处置衔接不畅。" in markdown
    assert "- 待改进：管涌报告晚了 25 分钟" in markdown


def test_the_api_saves_revisions_finalises_and_then_answers_409(
    client: FlaskClient, auth: AuthActions, reported: Drill
) -> None:
    api = f"/api/v1/drills/{reported.id}/aar"
    revisions = f"{api}/revisions"
    auth.login("lead")
    headers = {"X-CSRFToken": auth.csrf(f"/drills/{reported.id}")}
    body = {
        "base_revision": 0,
        "summary": "总体顺利。",
        "objectives": [{"objective": "O1", "rating": "P", "strengths": "回执及时"}],
    }
    created = client.post(revisions, json=body, headers=headers)
    assert created.status_code == 201 and created.get_json()["revision"] == 1
    assert client.post(revisions, json={**body, "base_revision": 1}, headers=headers).status_code == 200
    assert client.post(revisions, json={**body, "summary": "旧"}, headers=headers).status_code == 409
    assert client.post(revisions, json={**body, "summary": "NUL\u0000"}, headers=headers).status_code == 422

    got = client.get(api).get_json()
    assert (
        got["status"] == "draft"
        and got["revision"] == 1
        and got["lead_evaluator"]
        == {
            "name": "lead",
            "city": "xuzhou",
        }
    )
    assert got["objectives"][0]["rating"] == "P" and got["revisions"][0]["author"] == "lead"

    final = client.post(f"{api}/finalise", headers=headers)
    assert final.status_code == 200
    assert final.get_json()["status"] == "final" and final.get_json()["finalised_by"] == "lead"
    again = client.post(revisions, json={**body, "base_revision": 1, "summary": "改"}, headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert client.post(f"{api}/finalise", headers=headers).status_code == 409
    assert services.aar_report(reported).number == 1


def test_players_and_other_cities_get_403_and_nothing_changes(
    client: FlaskClient, auth: AuthActions, reported: Drill, make_user: Callable[..., User]
) -> None:
    make_user("ly-duty", "linyi")
    make_user("hz-coord", "heze")
    page = f"/drills/{reported.id}"
    for who in ("ly-duty", "hz-coord"):
        auth.login(who)
        shown = client.get(page).get_data(as_text=True)
        assert 'id="aar-narrative"' in shown and 'id="aar-form"' not in shown
        assert client.post(f"{page}/aar", data=_fields(auth, page, 0, "越权")).status_code == 403
        assert client.post(f"{page}/aar/finalise", data={"csrf_token": auth.csrf(page)}).status_code == 403
        headers = {"X-CSRFToken": auth.csrf(page)}
        api = f"/api/v1/drills/{reported.id}/aar"
        body = {"base_revision": 0, "summary": "越权"}
        assert client.post(f"{api}/revisions", json=body, headers=headers).status_code == 403
        assert client.post(f"{api}/finalise", headers=headers).status_code == 403
        auth.logout()
    assert services.aar_report(reported).revisions == ()
    assert reported.aar_finalised_at is None


def test_the_narrative_reads_in_english(client: FlaskClient, auth: AuthActions, reported: Drill) -> None:
    auth.login("lead")
    client.post("/locale/en", data={"csrf_token": auth.csrf("/"), "next": "/"})
    page = f"/drills/{reported.id}"
    client.post(f"{page}/aar", data=_fields(auth, page, 0, "Timely reports."))
    client.post(f"{page}/aar/finalise", data={"csrf_token": auth.csrf(page)})
    shown = client.get(page).get_data(as_text=True)
    assert "After-action report (final)" in shown and "Overall assessment" in shown
    assert "Areas for improvement" in shown and "Lead evaluator" in shown


def test_no_narrative_before_the_figures_are_drafted(
    client: FlaskClient, auth: AuthActions, make_drill: Callable[..., Drill], make_user: Callable[..., User]
) -> None:
    drill = played_to_endex(make_drill(evaluators=TEAM))
    make_user("lead", "xuzhou")
    auth.login("lead")
    assert client.get(f"/api/v1/drills/{drill.id}/aar").status_code == 404
    assert 'id="aar-narrative"' not in client.get(f"/drills/{drill.id}").get_data(as_text=True)
