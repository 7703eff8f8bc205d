"""The demo's conference history: the standing body of the ten cities and its last two meetings.

Both meetings are held, their minutes signed and sent, and their resolutions leave a mix of action
items: done, open and overdue. Seeding again changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import select

from contracts.common import IncidentCategory, IncidentLevel
from contracts.consultations import (
    ActionItemClose,
    ActionItemCreate,
    ConferenceBody,
    Evidence,
    MinutesRevision,
    Resolution,
)
from contracts.incidents import IncidentCreate
from hub.action_items import services as action_items
from hub.consultations import services
from hub.consultations.models import ConferenceBodyRow, Meeting
from hub.incidents import services as incidents
from hub.incidents.services import IncidentFilter
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role
from hub.kernel.types import DbSession, utcnow

BODY_NAME = "淮海经济区应急管理联席会议"
RHYTHM_MONTHS = 6

# Per meeting: minutes, the part marked public, and resolutions with (owner index, title, days
# after the meeting the item is due, whether it is done). Owners are indices into the members.
_HISTORY: tuple[tuple[str, str, tuple[tuple[str, tuple[tuple[int, str, int, bool], ...]], ...]], ...] = (
    (
        "一、通报上半年各市突发事件应对情况。\n二、研究汛期联防联控和跨市物资互助。\n三、议定下半年联合演练安排。",
        "各成员城市将于汛前开展联合防汛演练。",
        (
            ("建立跨市防汛物资互助清单，每季度更新一次。", ((1, "报送防汛物资互助清单", 30, True),)),
            ("汛前开展一次跨市联合防汛演练。", ((2, "组织跨市联合防汛演练", 60, False),)),
        ),
    ),
    (
        "一、回顾上次会议决议落实情况。\n二、研究冬春季森林防火和危化品运输联防。\n三、确定下次会议承办城市。",
        "各成员城市加强冬春季森林防火和危化品道路运输联合检查。",
        (
            ("统一危化品运输车辆跨市通报格式。", ((3, "提交危化品运输通报格式草案", 20, True),)),
            (
                "完善联席会议值班联络表并按季度核对。",
                ((4, "核对并更新值班联络表", 40, False), (5, "开展值班联络抽查", 200, False)),
            ),
        ),
    ),
)


def _months_back(day: date, months: int) -> date:
    month = day.month - 1 - months
    return date(day.year + month // 12, month % 12 + 1, min(day.day, 28))


def _actor(city_id: int, name: str = "seed") -> Actor:
    return Actor("system", name, city_id, Role.COORDINATOR)


def _hold(session: DbSession, meeting: Meeting, members: list[City], history: tuple) -> None:  # type: ignore[type-arg]
    """Hold a past meeting: everyone answered and came, minutes saved and signed, decisions taken."""
    content, public_part, resolutions = history
    for invitation in meeting.invitations:
        invitation.delivered_at = invitation.delivered_at or meeting.created_at
        invitation.answer = invitation.answer or "accept"
        invitation.answered_at = invitation.answered_at or meeting.created_at
        invitation.answered_by = invitation.answered_by or "seed"
    services.open_session(session, meeting.id, now=meeting.starts_at)
    chair = _actor(meeting.chair_city_id)
    services.record_attendance(session, chair, meeting.public_id, [c.slug for c in members])
    services.save_minutes(
        session,
        chair,
        meeting.public_id,
        MinutesRevision(base_revision=0, content=content, public_part=public_part),
    )
    decided_at: datetime = meeting.starts_at
    closing: list[tuple[int, uuid.UUID]] = []
    for text, items in resolutions:
        data = Resolution.model_validate(
            {
                "text": text,
                "decision_mode": "consensus",
                "follow_up": True,
                "action_items": [
                    ActionItemCreate(
                        owner_city=members[owner % len(members)].slug,
                        title=title,
                        due_on=(decided_at + timedelta(days=days)).date(),
                    )
                    for owner, title, days, _done in items
                ],
            }
        )
        _row, opened = services.add_resolution(session, chair, meeting.public_id, data, now=decided_at)
        closing.extend(
            (item.owner_city_id, item.public_id)
            for item, (_o, _t, _d, done) in zip(opened, items, strict=True)
            if done
        )
    for owner_city_id, public_id in closing:
        action_items.close(
            session,
            _actor(owner_city_id),
            public_id,
            ActionItemClose(evidence=Evidence(note="已按期办结，材料已报联席会议办公室。")),
        )
    services.sign(session, chair, meeting.public_id)


def seed_demo_conference(session: DbSession, today: date | None = None) -> int:
    """Set up the ten cities' standing conference with its last two meetings held; return how many
    meetings were added (none when the demo's conference is already there)."""
    if session.scalar(select(ConferenceBodyRow.id).limit(1)) is not None:
        return 0
    members = list(session.scalars(select(City).order_by(City.id)))
    if len(members) < 2:
        return 0
    today = today or utcnow().date()
    slugs = tuple(c.slug for c in members)
    definition = ConferenceBody(
        name=BODY_NAME,
        member_cities=slugs,
        rotation_order=slugs,
        first_host=slugs[0],
        # Meetings 1 and 2 are behind us (about eleven and five months ago); 3 is next.
        first_meeting_on=_months_back(today, 2 * RHYTHM_MONTHS - 1),
        rhythm_months=RHYTHM_MONTHS,
    )
    body = services.create_body(session, Actor("system", "seed", None, Role.ADMIN), definition)
    added = 0
    for seq, history in enumerate(_HISTORY, start=1):
        meeting = services.create_regular_meeting(session, body.id, seq)
        if meeting is None:
            continue
        _hold(session, meeting, members, history)
        added += 1
    session.flush()
    return added


DEMO_FLOOD_TITLE = "沂河临沂段洪水超警戒水位"


def seed_demo_flood(session: DbSession, now: datetime | None = None) -> int | None:
    """Record the demo's flood in Linyi at level III (one city, no consultation yet), once; return its id.

    Raising it to level II (the incident page's level) makes the hub propose a consultation to
    Linyi, inviting its neighbours and the flood and geology experts of their registries.
    """
    linyi = session.scalar(select(City).where(City.slug == "linyi"))
    if linyi is None:
        return None
    known = incidents.list_incidents(
        session, IncidentFilter(city="linyi", category=IncidentCategory.NATURAL), per_page=100
    )
    if any(i.title == DEMO_FLOOD_TITLE for i in known.items):
        return None
    now = now or utcnow()
    incident = incidents.create_incident(
        session,
        _actor(linyi.id, "demo"),
        IncidentCreate(
            category=IncidentCategory.NATURAL,
            level=IncidentLevel.III,
            title=DEMO_FLOOD_TITLE,
            description="沂河临沂站水位超警戒线0.6米，兰山区、河东区沿河低洼地带有积水，正组织巡堤查险。",
            location="临沂市兰山区沂河临沂站",
            occurred_at=now - timedelta(hours=1),
            affected_cities=("linyi",),
        ),
    )
    return incident.id
