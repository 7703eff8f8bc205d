"""Pages around meetings: roll-call, votes, experts' answers, action items, assessment, conference."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import select

from contracts.consultations import ActionItemCreate, ConferenceBody, ConsultationCall
from hub.action_items import services as action_items
from hub.action_items.models import ActionItem
from hub.action_items.rules import local_day
from hub.consultations import services as consultations
from hub.consultations.models import ConferenceBodyRow, Meeting, RotationEventRow
from hub.extensions import db
from hub.kernel import cities
from hub.kernel.actors import Actor
from hub.kernel.models import AuditEntry, Role
from hub.mutual_aid import services as registry
from tests.hub.mutual_aid.factories import entry


def _meeting(make_user, *invited: str, experts: tuple[str, ...] = ()) -> Meeting:
    linyi = Actor.for_user(make_user("ly", "linyi"))
    meeting = consultations.call(
        db.session,
        linyi,
        ConsultationCall(
            title="沂河洪水会商",
            starts_at=datetime.now(UTC) + timedelta(hours=1),
            invited_cities=invited,
            expert_specialities=experts,
        ),
    )
    db.session.commit()
    return meeting


def test_the_chair_takes_the_roll_call_and_records_a_vote_on_the_page(
    client: FlaskClient, auth, make_user
) -> None:
    meeting = _meeting(make_user, "xuzhou", "heze", "jining")
    page = f"/consultations/{meeting.public_id}"
    auth.login("ly")
    response = client.post(
        f"{page}/roll-call", data={"csrf_token": auth.csrf(page), "present": ["linyi", "xuzhou", "heze"]}
    )
    assert response.status_code == 302
    html = client.get(page).get_data(as_text=True)
    assert "3 个城市出席" in html
    assert 'data-city="jining" class="absent"' in html

    response = client.post(
        f"{page}/resolutions",
        data={
            "csrf_token": auth.csrf(page),
            "text": "启用跨市排涝泵调度",
            "decision_mode": "vote",
            "vote-linyi": "approve",
            "vote-xuzhou": "approve",
            "vote-heze": "reject",
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    (resolution,) = db.session.get(Meeting, meeting.id).resolutions
    assert resolution.decision_mode == "vote"
    assert resolution.votes == {"linyi": "approve", "xuzhou": "approve", "heze": "reject"}
    assert resolution.outcome == "adopted"
    html = client.get(page).get_data(as_text=True)
    assert "通过" in html and "反对" in html

    # A vote from a city absent at the roll-call is refused, and nothing is recorded.
    client.post(
        f"{page}/resolutions",
        data={
            "csrf_token": auth.csrf(page),
            "text": "第二项",
            "decision_mode": "vote",
            "vote-jining": "approve",
        },
    )
    db.session.expire_all()
    assert len(db.session.get(Meeting, meeting.id).resolutions) == 1


def test_only_the_chair_takes_the_roll_call(client: FlaskClient, auth, make_user) -> None:
    meeting = _meeting(make_user, "xuzhou")
    make_user("xz", "xuzhou")
    page = f"/consultations/{meeting.public_id}"
    auth.login("xz")
    assert 'id="record-roll-call"' not in client.get(page).get_data(as_text=True)
    response = client.post(f"{page}/roll-call", data={"csrf_token": auth.csrf(page), "present": ["xuzhou"]})
    assert response.status_code == 403
    assert db.session.get(Meeting, meeting.id).attendance == []


def test_an_experts_city_answers_for_the_expert_on_the_page(
    client: FlaskClient, auth, make_user, city
) -> None:
    registry.register_entry(
        db.session,
        Actor("system", "seed", city("xuzhou").id, Role.COORDINATOR),
        entry("xuzhou", "expert-flood-1", type_code="expert.flood", name="徐州防汛专家王工"),
    )
    db.session.commit()
    meeting = _meeting(make_user, "xuzhou", experts=("防汛",))
    (expert,) = meeting.experts
    # The expert has not answered by the reminder time: reminded once, on the desk of their city.
    later = expert.delivered_at + consultations.REMIND_AFTER
    assert consultations.remind_unanswered(db.session, meeting.id, later) == 2  # xuzhou and its expert
    db.session.commit()
    make_user("xz", "xuzhou")
    auth.login("xz")
    desk = client.get("/dashboard/live").get_data(as_text=True)
    assert "专家会商邀请待答复：徐州防汛专家王工" in desk
    assert "已提醒" in desk.split("专家会商邀请待答复")[1].split("</li>")[0]
    page = f"/consultations/{meeting.public_id}"
    shown = client.get(page).get_data(as_text=True)
    assert "代为答复" in shown
    assert "0 / 1 位确认参加（专家不计入法定人数）" in shown
    client.post(
        f"{page}/experts/{expert.public_id}/answer",
        data={"csrf_token": auth.csrf(page), "answer": "delegate", "delegate_name": "李工"},
    )
    db.session.expire_all()
    assert (expert.answer, expert.delegate_name) == ("delegate", "李工")
    assert "专家会商邀请待答复" not in client.get("/dashboard/live").get_data(as_text=True)
    assert "1 / 1 位确认参加（专家不计入法定人数）" in client.get(page).get_data(as_text=True)


def _item(make_user, owner: str, due: date) -> ActionItem:
    chair = Actor.for_user(make_user("ly-chair", "linyi"))
    (item,) = action_items.open_items(
        db.session,
        chair,
        [ActionItemCreate(owner_city=owner, title="报送沂河徐州段巡查记录", due_on=due)],
        origin="resolution",
        origin_id=1,
        context_id=None,
        chair_city_id=cities.by_slug(db.session, "linyi").id,
        now=datetime.now(UTC) - timedelta(days=10),  # opened ten days ago, so the due day may be past
    )
    db.session.commit()
    return item


def test_the_owner_closes_with_evidence_and_the_chair_reopens(client: FlaskClient, auth, make_user) -> None:
    item = _item(make_user, "xuzhou", date.today() - timedelta(days=3))
    make_user("xz", "xuzhou")
    auth.login("xz")
    html = client.get("/action-items?state=overdue").get_data(as_text=True)
    assert "报送沂河徐州段巡查记录" in html and "逾期 " in html and "提交办结" in html

    # Without a note the item stays open.
    client.post(
        f"/action-items/{item.public_id}/close", data={"csrf_token": auth.csrf("/action-items"), "note": ""}
    )
    db.session.expire_all()
    assert db.session.get(ActionItem, item.id).state == "open"

    client.post(
        f"/action-items/{item.public_id}/close",
        data={
            "csrf_token": auth.csrf("/action-items"),
            "note": "巡查记录已报送",
            "documents": "doc-2026-001\nhttps://xz.example.cn/r/1",
        },
    )
    db.session.expire_all()
    closed = db.session.get(ActionItem, item.id)
    assert closed.state == "closed"
    assert closed.evidence == {
        "note": "巡查记录已报送",
        "documents": ["doc-2026-001", "https://xz.example.cn/r/1"],
    }
    assert "巡查记录已报送" in client.get("/action-items?state=closed").get_data(as_text=True)
    # The owner cannot reopen; that is the chair's word.
    assert "重新办理的理由" not in client.get("/action-items?state=closed").get_data(as_text=True)
    auth.logout()

    auth.login("ly-chair")
    html = client.get("/action-items?view=chaired&state=closed").get_data(as_text=True)
    assert "重新办理的理由" in html
    client.post(
        f"/action-items/{item.public_id}/reopen?view=chaired&state=closed",
        data={
            "csrf_token": auth.csrf("/action-items"),
            "reason": "记录不全",
            "due_on": local_day(datetime.now(UTC)).isoformat(),  # the hub counts days in Shanghai
        },
    )
    db.session.expire_all()
    assert db.session.get(ActionItem, item.id).state == "reopened"


def test_another_city_cannot_close_an_item(client: FlaskClient, auth, make_user) -> None:
    item = _item(make_user, "xuzhou", date.today() + timedelta(days=3))
    make_user("hz", "heze")
    auth.login("hz")
    assert "报送沂河徐州段巡查记录" not in client.get("/action-items").get_data(as_text=True)
    response = client.post(
        f"/action-items/{item.public_id}/close",
        data={"csrf_token": auth.csrf("/action-items"), "note": "代办"},
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(ActionItem, item.id).state == "open"


def test_a_bad_filter_is_refused(client: FlaskClient, auth, make_user) -> None:
    make_user("xz", "xuzhou")
    auth.login("xz")
    assert client.get("/action-items?state=lost").status_code == 400
    assert client.get("/action-items?view=all").status_code == 403


def test_the_assessment_page_shows_each_city_and_links_the_csv(client: FlaskClient, auth, make_user) -> None:
    make_user("xz", "xuzhou")
    auth.login("xz")
    html = client.get("/consultations/assessment?year=2026").get_data(as_text=True)
    assert html.count('<tr data-city="') == 10
    assert "/api/v1/consultations/assessment/2026.csv" in html
    assert client.get("/api/v1/consultations/assessment/2026.csv").status_code == 200


def _body() -> ConferenceBodyRow:
    body = consultations.create_body(
        db.session,
        Actor("system", "setup", None, Role.ADMIN),
        ConferenceBody(
            name="淮海区域应急管理合作联席会议",
            member_cities=("xuzhou", "linyi", "heze"),
            rotation_order=("xuzhou", "linyi", "heze"),
            first_host="xuzhou",
            first_meeting_on=date(2027, 3, 15),
        ),
    )
    db.session.commit()
    return body


def test_the_conference_page_shows_ten_turns_and_records_a_skip_with_its_reason(
    client: FlaskClient, auth, make_user
) -> None:
    body = _body()
    make_user("ly", "linyi")
    auth.login("ly")
    html = client.get("/consultations/conference").get_data(as_text=True)
    assert html.count("<tr data-seq=") == 10
    assert "徐州" in html and "记录跳过或对调" in html
    before = [t.host for t in consultations.upcoming_turns(body, 3)]
    assert before == ["xuzhou", "linyi", "heze"]

    response = client.post(
        f"/consultations/conference/{body.public_id}/rotation",
        data={
            "csrf_token": auth.csrf("/consultations/conference"),
            "kind": "skip",
            "seq": "1",
            "role": "both",
            "city": "xuzhou",
            "with_city": "",
            "reason": "徐州承办全省防汛演练，申请顺延",
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    (event,) = db.session.scalars(select(RotationEventRow)).all()
    assert (event.kind, event.city, event.reason) == ("skip", "xuzhou", "徐州承办全省防汛演练，申请顺延")
    body = db.session.get(ConferenceBodyRow, body.id)
    assert consultations.upcoming_turns(body, 1)[0].host == "linyi"
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "conference.rotation_skip")).one()
    assert "徐州承办全省防汛演练" in client.get("/consultations/conference").get_data(as_text=True)


def test_a_duty_officer_sees_the_conference_but_cannot_change_the_rotation(
    client: FlaskClient, auth, make_user
) -> None:
    body = _body()
    make_user("xz-duty", "xuzhou", Role.DUTY_OFFICER)
    auth.login("xz-duty")
    assert "记录跳过或对调" not in client.get("/consultations/conference").get_data(as_text=True)
    response = client.post(
        f"/consultations/conference/{body.public_id}/rotation",
        data={
            "csrf_token": auth.csrf("/consultations/conference"),
            "kind": "skip",
            "seq": "1",
            "role": "both",
            "city": "xuzhou",
            "reason": "无",
        },
    )
    assert response.status_code == 403
    assert db.session.scalars(select(RotationEventRow)).all() == []


def _definition_form(auth, **changes: str) -> dict[str, str]:
    form = {
        "csrf_token": auth.csrf("/consultations/conference"),
        "name": "淮海区域应急管理合作联席会议",
        "order-xuzhou": "1",
        "order-linyi": "2",
        "order-heze": "3",
        "next_host": "xuzhou",
        "next_meeting_on": "2027-03-15",
        "meeting_time": "09:00",
        "duration_minutes": "180",
        "rhythm_months": "6",
        "agenda_deadline_days": "7",
        "lead_days": "30",
    }
    form.update(changes)
    return form


def test_a_member_citys_coordinator_edits_the_conference_and_the_turns_follow(
    client: FlaskClient, auth, make_user
) -> None:
    body = _body()
    make_user("ly", "linyi")
    auth.login("ly")
    assert "修改会议机制" in client.get("/consultations/conference").get_data(as_text=True)
    # Suqian joins after Heze; the conference meets every four months, agenda ten days ahead.
    response = client.post(
        f"/consultations/conference/{body.public_id}/definition",
        data=_definition_form(
            auth, **{"order-suqian": "4", "rhythm_months": "4", "agenda_deadline_days": "10"}
        ),
    )
    assert response.status_code == 302
    db.session.expire_all()
    body = db.session.get(ConferenceBodyRow, body.id)
    turns = consultations.upcoming_turns(body, 5)
    assert [t.host for t in turns] == ["xuzhou", "linyi", "heze", "suqian", "xuzhou"]
    assert [t.starts_at.date() for t in turns[:3]] == [
        date(2027, 3, 15),
        date(2027, 7, 15),
        date(2027, 11, 15),
    ]
    assert turns[0].agenda_deadline.date() == date(2027, 3, 5)
    (entry_,) = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "conference.updated")).all()
    assert entry_.actor == "ly"
    html = client.get("/consultations/conference").get_data(as_text=True)
    assert html.count("<tr data-seq=") == 10 and "宿迁" in html.split('id="next-turns"')[1]


def test_a_coordinator_of_a_city_outside_the_conference_cannot_edit_it(
    client: FlaskClient, auth, make_user
) -> None:
    body = _body()
    make_user("sq", "suqian")
    auth.login("sq")
    assert "修改会议机制" not in client.get("/consultations/conference").get_data(as_text=True)
    response = client.post(
        f"/consultations/conference/{body.public_id}/definition",
        data=_definition_form(auth, **{"order-suqian": "4"}),
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert consultations.body_contract(db.session.get(ConferenceBodyRow, body.id)).member_cities == (
        "xuzhou",
        "linyi",
        "heze",
    )
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "conference.updated")).all() == []


def _links(html: str, container: str) -> list[str]:
    block = html.split(f'id="{container}"', 1)[1].split("</p>", 1)[0]
    return re.findall(r'href="([^"]+)"', block)


def test_every_consultation_page_is_reached_from_the_menu_and_the_meeting_page(
    client: FlaskClient, auth, make_user
) -> None:
    body = _body()
    meeting = consultations.create_regular_meeting(db.session, body.id, 1)
    assert meeting is not None
    db.session.commit()
    make_user("xz", "xuzhou")
    auth.login("xz")
    desk = client.get("/").get_data(as_text=True)
    menu = desk.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert 'href="/consultations"' in menu and 'href="/action-items"' in menu

    page = client.get(f"/consultations/{meeting.public_id}").get_data(as_text=True)
    links = _links(page, "meeting-nav")
    targets = [link for link in links if not link.startswith("#")]
    assert {t.split("?")[0] for t in targets} == {
        "/consultations",
        "/action-items",
        "/consultations/conference",
        "/consultations/assessment",
    }
    for target in targets:
        assert client.get(target).status_code == 200, target
    # Each part of the meeting the bar names is on the page: roll-call, minutes, votes.
    anchors = [link[1:] for link in links if link.startswith("#")]
    assert {"invitations", "roll-call", "minutes", "resolution-section"} <= set(anchors)
    for anchor in anchors:
        assert f'id="{anchor}"' in page, anchor
    conference = client.get("/consultations/conference").get_data(as_text=True)
    assert {"/consultations", "/action-items", "/consultations/assessment"} == set(
        _links(conference, "conference-nav")
    )
