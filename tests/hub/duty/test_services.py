"""The duty roster and the directory: who is on duty when, CSV in and out, bad files refused whole."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from hub.duty import services as duty
from hub.duty.models import Contact, DutyShift
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, InvalidInput
from hub.kernel.models import AuditEntry, Role

ROSTER = """date,shift,officer,officer_phone,leader,leader_phone
2026-11-30,day,王磊,0539-8311000,刘建国,13905390001
2026-11-30,夜班,陈静,0539-8311000,赵明,13905390002
2026-12-01,day,孙涛,,刘建国,
"""


def _count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_shifts_run_from_eight_to_eight_in_shanghai() -> None:
    # 2026-11-30 07:59 Shanghai is still the night shift that began on the 29th.
    assert duty.shift_at(datetime(2026, 11, 29, 23, 59, tzinfo=UTC)) == (date(2026, 11, 29), "night")
    assert duty.shift_at(datetime(2026, 11, 30, 0, 0, tzinfo=UTC)) == (date(2026, 11, 30), "day")
    assert duty.shift_at(datetime(2026, 11, 30, 11, 59, tzinfo=UTC)) == (date(2026, 11, 30), "day")
    assert duty.shift_at(datetime(2026, 11, 30, 12, 0, tzinfo=UTC)) == (date(2026, 11, 30), "night")


def test_a_roster_imports_replaces_and_exports_the_same_columns(make_user) -> None:
    actor = Actor.for_user(make_user("ly", "linyi"))
    assert duty.import_roster(db.session, actor, ROSTER) == 3
    db.session.commit()
    on = duty.on_duty(db.session, datetime(2026, 11, 30, 13, 0, tzinfo=UTC))  # 21:00 Shanghai
    assert (on[actor.city_id].officer, on[actor.city_id].leader) == ("陈静", "赵明")
    # The same day and shift again replaces it; the other shifts stay.
    duty.import_roster(
        db.session,
        actor,
        "date,shift,officer,officer_phone,leader,leader_phone\n2026-11-30,night,李娜,,赵明,\n",
    )
    db.session.commit()
    assert _count(DutyShift) == 3
    exported = duty.export_roster(db.session, "linyi", date(2026, 11, 30), 2)
    assert exported.splitlines() == [
        "date,shift,officer,officer_phone,leader,leader_phone",
        "2026-11-30,day,王磊,0539-8311000,刘建国,13905390001",
        "2026-11-30,night,李娜,,赵明,",
        "2026-12-01,day,孙涛,,刘建国,",
    ]
    # What was exported imports again unchanged.
    assert duty.import_roster(db.session, actor, exported) == 3
    assert db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.action == "duty.roster_imported")
    ).all()


@pytest.mark.parametrize(
    ("text", "reason", "line"),
    [
        ("date,shift,officer\n2026-11-30,day,王磊\n", "csv_columns", None),
        (ROSTER + "2026-13-01,day,王磊,,刘建国,\n", "csv_date", 5),
        (ROSTER + "2026-12-02,早班,王磊,,刘建国,\n", "csv_shift", 5),
        (ROSTER + "2026-12-02,day,,,刘建国,\n", "csv_empty", 5),
        (ROSTER + "2026-11-30,day,王磊,,刘建国,\n", "csv_twice", 5),
        (ROSTER + "2026-12-02,day,王磊,call me,刘建国,\n", "csv_phone", 5),
        (ROSTER + "2026-12-02,day,王\x00磊,,刘建国,\n", "csv_control_character", 5),
    ],
)
def test_a_bad_row_refuses_the_whole_file_and_says_where(
    make_user, text: str, reason: str, line: int | None
) -> None:
    actor = Actor.for_user(make_user("ly", "linyi"))
    with pytest.raises(InvalidInput) as caught:
        duty.import_roster(db.session, actor, text)
    assert caught.value.reason == reason
    if line is not None:
        assert isinstance(caught.value.details, dict) and caught.value.details["line"] == line
    db.session.rollback()
    assert _count(DutyShift) == 0


def test_only_the_citys_coordinators_keep_its_roster(make_user) -> None:
    for role in (Role.DUTY_OFFICER, Role.OBSERVER):
        with pytest.raises(Forbidden):
            duty.import_roster(
                db.session, Actor.for_user(make_user(f"x-{role.value}", "linyi", role)), ROSTER
            )


def test_the_directory_imports_and_exports_with_chinese_kinds(make_user) -> None:
    actor = Actor.for_user(make_user("xz", "xuzhou"))
    text = (
        "kind,name,title,phone,mobile\n"
        "值班室,徐州市应急管理局总值班室,,0516-83700000,\n"
        "领导,周强,副局长,,13905160001\n"
    )
    assert duty.import_directory(db.session, actor, text) == 2
    db.session.commit()
    assert [(c.kind, c.name) for c in duty.directory(db.session)] == [
        ("desk", "徐州市应急管理局总值班室"),
        ("leader", "周强"),
    ]
    assert (
        duty.export_directory(db.session).splitlines()[1]
        == "xuzhou,desk,徐州市应急管理局总值班室,,0516-83700000,"
    )
    with pytest.raises(InvalidInput) as caught:
        duty.import_directory(db.session, actor, "kind,name,title,phone,mobile\nleader,吴刚,局长,,\n")
    assert caught.value.reason == "csv_no_phone"
    db.session.rollback()
    assert _count(Contact) == 2
