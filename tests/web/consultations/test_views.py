"""Consultation pages: call, the invitation on the desk, answering, minutes with revisions, signing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.action_items.rules import local_day
from hub.consultations import services as consultations
from hub.consultations.models import Meeting
from hub.extensions import db


def test_call_answer_minutes_resolution_and_sign(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    make_user("xz", "xuzhou")
    auth.login("ly")
    assert "会商" in client.get("/consultations").get_data(as_text=True)
    starts = (
        (datetime.now(UTC) + timedelta(hours=3))
        .astimezone(ZoneInfo("Asia/Shanghai"))
        .strftime("%Y-%m-%dT%H:%M")
    )
    response = client.post(
        "/consultations/new",
        data={
            "csrf_token": auth.csrf("/consultations/new"),
            "title": "沂河洪水会商",
            "starts_at": starts,
            "duration_minutes": "60",
            "video_link": "https://video.example.invalid/r/1",
            "invited_cities": ["xuzhou", "suqian"],
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    meeting = db.session.scalars(select(Meeting)).one()
    db.session.commit()
    auth.logout()

    auth.login("xz")
    assert "会商邀请待答复：沂河洪水会商" in client.get("/dashboard/live").get_data(as_text=True)
    page = f"/consultations/{meeting.public_id}"
    assert "本市须答复" in client.get(page).get_data(as_text=True)
    client.post(f"{page}/answer", data={"csrf_token": auth.csrf(page), "answer": "accept"})
    assert "本市须答复" not in client.get(page).get_data(as_text=True)
    client.post(
        f"{page}/minutes", data={"csrf_token": auth.csrf(page), "base_revision": "0", "content": "一、汛情"}
    )
    auth.logout()

    auth.login("ly")
    detail = client.get(page).get_data(as_text=True)
    assert "第 1 版" in detail and 'id="sign"' in detail
    client.post(
        f"{page}/resolutions",
        data={
            "csrf_token": auth.csrf(page),
            "text": "加强巡查",
            "owner_city": "xuzhou",
            "action_title": "巡查沂河徐州段",
            "due_on": (datetime.now(UTC) + timedelta(days=7)).date().isoformat(),
        },
    )
    assert "巡查沂河徐州段" in client.get(page).get_data(as_text=True)
    client.post(f"{page}/sign", data={"csrf_token": auth.csrf(page)})
    assert "已签发" in client.get(page).get_data(as_text=True)
    refused = client.post(
        f"{page}/minutes", data={"csrf_token": auth.csrf(page), "base_revision": "1", "content": "改"}
    )
    assert refused.status_code == 409


def test_a_meeting_page_is_not_found_for_cities_not_taking_part(client: FlaskClient, auth, make_user) -> None:
    make_user("hz", "heze")
    ly = make_user("ly", "linyi")
    from contracts.consultations import ConsultationCall
    from hub.kernel.actors import Actor

    meeting = consultations.call(
        db.session,
        Actor.for_user(ly),
        ConsultationCall(
            title="会商", starts_at=datetime.now(UTC) + timedelta(hours=1), invited_cities=("xuzhou",)
        ),
    )
    db.session.commit()
    auth.login("hz")
    assert client.get(f"/consultations/{meeting.public_id}").status_code == 404


def test_an_overdue_action_item_is_urgent_for_its_owner_and_waits_with_the_chair(
    client: FlaskClient, auth, make_user, city
) -> None:
    from contracts.consultations import ActionItemCreate
    from hub.action_items import services as action_items
    from hub.kernel.actors import Actor

    chair = make_user("ly", "linyi")
    make_user("xz", "xuzhou")
    (item,) = action_items.open_items(
        db.session,
        Actor.for_user(chair),
        [ActionItemCreate(owner_city="xuzhou", title="报送物资清单", due_on=local_day(datetime.now(UTC)))],
        origin="resolution",
        origin_id=1,
        context_id=None,
        chair_city_id=city("linyi").id,
    )
    item.due_on = item.due_on - timedelta(days=3)
    db.session.commit()
    auth.login("xz")
    assert "督办事项逾期：报送物资清单" in client.get("/dashboard/live").get_data(as_text=True)
    auth.logout()
    auth.login("ly")
    live = client.get("/dashboard/live").get_data(as_text=True)
    assert "督办事项逾期：报送物资清单" in live.split('id="waiting-title"')[1]


def test_signed_minutes_link_to_their_receipts_and_the_chair_publishes_the_public_part(
    client: FlaskClient, auth, make_user
) -> None:
    from contracts.consultations import ConsultationCall, MinutesRevision
    from hub.kernel.actors import Actor

    linyi = Actor.for_user(make_user("ly", "linyi"))
    meeting = consultations.call(
        db.session,
        linyi,
        ConsultationCall.model_validate(
            {
                "title": "纪要会商",
                "starts_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                "invited_cities": ["xuzhou"],
            }
        ),
    )
    consultations.save_minutes(
        db.session,
        linyi,
        meeting.public_id,
        MinutesRevision(base_revision=0, content="纪要", public_part="公开内容"),
    )
    consultations.sign(db.session, linyi, meeting.public_id)
    db.session.commit()
    auth.login("ly")
    page = f"/consultations/{meeting.public_id}"
    assert "纪要正在以通报发往各成员城市" in client.get(page).get_data(as_text=True)
    bulletin_id = consultations.distribute_minutes(db.session, meeting.id)
    db.session.commit()
    detail = client.get(page).get_data(as_text=True)
    assert f"/bulletins/{bulletin_id}" in detail and 'id="publish"' in detail
    client.post(f"{page}/publish", data={"csrf_token": auth.csrf(page)})
    db.session.expire_all()
    published = db.session.get(Meeting, meeting.id)
    assert published is not None and published.public_bulletin_id is not None
    assert f"/bulletins/{published.public_bulletin_id}" in client.get(page).get_data(as_text=True)
