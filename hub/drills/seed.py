"""The demo's drills: one held last month with its after-action report and corrective actions,
and a tabletop flood drill of the ten cities, approved, that a coordinator starts and watches.

The tabletop runs at 30x: two hours of scenario in four minutes. Seeding again changes nothing.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select

from contracts.drills import (
    AarNarrative,
    CorrectiveActionCreate,
    DrillPlan,
    ExpectedAction,
    ObjectiveAssessment,
    ObservationCreate,
    TaskRating,
)
from hub.action_items import rules as action_rules
from hub.drills import rules, services
from hub.drills.models import Drill
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role
from hub.kernel.types import DbSession, utcnow

HELD_NAME = "沂沭泗流域防汛联合桌面推演"
TABLETOP_NAME = "淮海区域特大暴雨洪涝联合桌面推演（演示）"
TABLETOP_SCALE = 30.0
PLAN = "淮海区域防汛抗旱联合应急预案"
CONTROLLER = "xuzhou-coord"
OBJECTIVES = (
    {
        "ref": "O1",
        "title": "汛情信息及时互通",
        "critical_tasks": [
            {"ref": "O1.1", "title": "接报后 10 分钟内阅知"},
            {"ref": "O1.2", "title": "预警回执"},
        ],
    },
    {
        "ref": "O2",
        "title": "跨市支援与会商",
        "critical_tasks": [
            {"ref": "O2.1", "title": "提出支援请求"},
            {"ref": "O2.2", "title": "发起联席会商"},
        ],
    },
)
# The held drill: per city, seconds from delivery to its reading of the notice (None: never read).
_HELD_READS = {"xuzhou": 95, "linyi": 240, "suqian": 410, "lianyungang": None}


def _controller(session: DbSession) -> Actor:
    xuzhou = session.scalars(select(City).where(City.slug == "xuzhou")).one()
    return Actor("system", CONTROLLER, xuzhou.id, Role.COORDINATOR)


def _plan(name: str, cities: list[str], start: datetime, hours: float, scenario: str) -> DrillPlan:
    return DrillPlan.model_validate(
        {
            "name": name,
            "drill_type": "tabletop",
            "scope": "combined",
            "scenario": scenario,
            "plans": [PLAN],
            "controlling_city": "xuzhou",
            "participating_cities": cities,
            "objectives": OBJECTIVES,
            "startex": start,
            "endex": start + timedelta(hours=hours),
            "controllers": [{"name": CONTROLLER, "city": "xuzhou"}],
            "evaluators": [{"name": CONTROLLER, "city": "xuzhou"}],
        }
    )


def _row(
    number: int,
    offset_min: int,
    city: str,
    channel: str,
    message: str,
    action: str = "",
    within_min: int = 0,
    vehicle: str = "",
) -> str:
    within = f"0:{within_min:02d}:00" if action else ""
    offset = f"{offset_min // 60}:{offset_min % 60:02d}:00"
    return f"{number},{offset},{city},{vehicle},{channel},{message},{action},{within},\r\n"


_HEADER = "number,offset,city,vehicle,channel,message,expected_action,expected_within,contingency_of\r\n"


def _held(session: DbSession, actor: Actor, now: datetime) -> Drill:
    """Plan, play and evaluate last month's drill, with its report drafted at ENDEX."""
    start = now.replace(microsecond=0) - timedelta(days=35)
    cities = list(_HELD_READS)
    plan = _plan(HELD_NAME, cities, start, 2, "沂河、沭河同时涨水，骆马湖水位快速上涨，需跨市协同调度。")
    drill = services.create(session, actor, plan)
    rows = [
        _row(n, 0, city, "desk_notice", f"沂沭河洪峰通知（{n}）", "notice_read", 10)
        for n, city in enumerate(cities, 1)
    ]
    services.import_msel(session, actor, drill.id, (_HEADER + "".join(rows)).encode())
    services.approve(session, actor, drill.id)
    services.start(session, drill.id, start)
    city_ids = {c.slug: c.id for c in session.scalars(select(City))}
    for number, city in enumerate(cities, 1):
        services.deliver(session, drill.id, number, now=start)
        seconds = _HELD_READS[city]
        if seconds is not None:
            player = Actor("system", f"{city}-duty", city_ids[city], Role.DUTY_OFFICER)
            at = start + timedelta(seconds=seconds)
            services.record_response(
                session, player, drill.id, ExpectedAction.NOTICE_READ, number=number, at=at
            )
    observations = [
        (
            "O1",
            "O1.1",
            TaskRating.SOME_CHALLENGES,
            "三市在 10 分钟内阅知，连云港未阅知：夜间值班席位无人值守。",
            30,
        ),
        ("O1", "O1.2", TaskRating.PERFORMED, "徐州、临沂回执规范，内容完整。", 60),
        ("O2", "O2.1", TaskRating.MAJOR_CHALLENGES, "宿迁提出支援请求时未写明集结地点，物资调度延误。", 90),
    ]
    for objective, task, rating, text, minute in observations:
        services.add_observation(
            session,
            actor,
            drill.id,
            ObservationCreate(
                objective=objective,
                critical_task=task,
                rating=rating,
                text=text,
                observed_at=start + timedelta(minutes=minute),
            ),
        )
    endex = start + timedelta(hours=2)
    services.end(session, drill.id, endex)
    services.draft_aar(session, drill.id, now=endex + timedelta(seconds=20))
    today = action_rules.local_day(now)
    for owner, title, days, objective in (
        ("lianyungang", "夜间值班席位双人值守，修订值班制度", 20, "O1"),
        ("suqian", "支援请求模板增加集结地点与联系人", 45, "O2"),
    ):
        services.add_corrective_action(
            session,
            actor,
            drill.id,
            CorrectiveActionCreate(
                owner_city=owner,
                title=title,
                due_on=today + timedelta(days=days),
                plan=PLAN,
                objective=objective,
            ),
        )
    # The lead evaluator (the plan's first evaluator) writes the report's narrative and finalises it.
    lead = Actor("user", CONTROLLER, actor.city_id, Role.COORDINATOR)
    services.save_aar(
        session,
        lead,
        drill.id,
        AarNarrative(
            base_revision=0,
            summary="四市均收到首条注入；连云港夜间席位未阅知，宿迁支援请求缺少集结地点，物资调度延误。",
            objectives=(
                ObjectiveAssessment(
                    objective="O1",
                    rating=TaskRating.SOME_CHALLENGES,
                    strengths="徐州、临沂阅知及时，回执规范。",
                    improvements="连云港夜间值班席位无人阅知，需双人值守。",
                ),
                ObjectiveAssessment(
                    objective="O2",
                    rating=TaskRating.MAJOR_CHALLENGES,
                    improvements="支援请求须写明集结地点与联系人。",
                ),
            ),
        ),
    )
    services.finalise_aar(session, lead, drill.id)
    return drill


def _tabletop(session: DbSession, actor: Actor, now: datetime) -> Drill:
    """Approve the ten cities' tabletop for tomorrow morning; a coordinator may start it at once."""
    members = [c.slug for c in session.scalars(select(City).order_by(City.id))]
    day = (now.astimezone(rules.DISPLAY_TZ) + timedelta(days=1)).date()
    start = datetime.combine(day, time(9, 0), tzinfo=rules.DISPLAY_TZ)
    scenario = "淮河、沂沭泗流域普降特大暴雨，多地水位超保证，需十市协同预警、转移、支援与会商。"
    drill = services.create(
        session, actor, _plan(TABLETOP_NAME, members, start, 2, scenario), time_scale=TABLETOP_SCALE
    )
    rows = []
    number = 0
    for city in members:
        number += 1
        rows.append(
            _row(
                number,
                0,
                city,
                "desk_notice",
                "【汛情】流域普降特大暴雨，请各市进入应急值守状态",
                "notice_read",
                10,
            )
        )
    for city in members:
        if city == "xuzhou":
            continue
        number += 1
        rows.append(
            _row(
                number,
                20,
                city,
                "warning",
                "暴雨红色预警：未来 6 小时降雨量将达 150 毫米以上",
                "receipt_signed",
                20,
            )
        )
    for minute, city, channel, message, action in (
        (40, "linyi", "partner_platform", "沂河临沂段水位超保证，请平台值班员签收", "receipt_signed"),
        (50, "linyi", "incident", "沂河柳杭段出现管涌险情", ""),
        (60, "suqian", "aid_request", "骆马湖周边排涝能力不足，请向邻市申请排涝泵车", "aid_requested"),
        (70, "linyi", "consultation_call", "请发起跨市联席会商，研究沂河洪水调度", "consultation_called"),
        (80, "heze", "cap", "黄河菏泽段洪水蓝色预警（CAP）", "receipt_signed"),
    ):
        number += 1
        rows.append(_row(number, minute, city, channel, message, action, 30 if action else 0))
    number += 1
    rows.append(
        _row(number, 90, "linyi", "mqtt_vehicle", "请前往柳杭段现场", "command_acked", 10, vehicle="v01")
    )
    services.import_msel(session, actor, drill.id, (_HEADER + "".join(rows)).encode())
    services.approve(session, actor, drill.id)
    return drill


def seed_demo_drills(session: DbSession, now: datetime | None = None) -> int:
    """Add the demo's held drill and its tabletop; return how many were added (none when there
    are drills already)."""
    if session.scalar(select(Drill.id).limit(1)) is not None:
        return 0
    if session.scalar(select(City.id).where(City.slug == "xuzhou")) is None:
        return 0
    now = now or utcnow()
    actor = _controller(session)
    _held(session, actor, now)
    _tabletop(session, actor, now)
    session.flush()
    return 2
