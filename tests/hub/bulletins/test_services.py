"""Bulletins: addressing, restricted visibility, one receipt per city, reminders then flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from contracts.bulletins import BulletinCreate, ReceiptCreate
from hub.bulletins import services as bulletins
from hub.bulletins.models import Bulletin
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, InvalidInput, NotFound
from hub.kernel.models import FlowRequest, Reminder, Role


def _data(**overrides: object) -> BulletinCreate:
    body = {
        "kind": "warning",
        "colour": "orange",
        "category": "natural_disaster",
        "area": "沂河流域",
        "title": "沂河洪水橙色预警",
        "text": "预计未来12小时沂河临沂段将出现超警戒水位。",
        "addressed_cities": ["xuzhou", "suqian"],
        "scope": "public",
        "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
    }
    body.update(overrides)
    return BulletinCreate.model_validate(body)


def test_issue_queues_one_delivery_per_city_and_a_flow(make_user) -> None:
    actor = Actor.for_user(make_user("ly", "linyi"))
    bulletin = bulletins.issue(db.session, actor, _data())
    db.session.commit()
    assert [r.city.slug for r in bulletin.recipients] == ["xuzhou", "suqian"]
    assert all(r.delivered_at is None for r in bulletin.recipients)
    assert db.session.scalars(select(FlowRequest)).one().parameters == {"bulletin_id": bulletin.id}


def test_all_neighbours_expands_and_leaves_out_the_issuer(make_user) -> None:
    actor = Actor.for_user(make_user("ly", "linyi"))
    bulletin = bulletins.issue(db.session, actor, _data(addressed_cities=["linyi"], all_neighbours=True))
    assert sorted(r.city.slug for r in bulletin.recipients) == [
        "jining",
        "lianyungang",
        "xuzhou",
        "zaozhuang",
    ]


def test_rules(make_user) -> None:
    actor = Actor.for_user(make_user("ly", "linyi"))
    with pytest.raises(ValueError, match="colour"):
        _data(colour=None)
    with pytest.raises(InvalidInput):
        bulletins.issue(db.session, actor, _data(receipt_deadline=datetime.now(UTC).isoformat()))
    with pytest.raises(NotFound):
        bulletins.issue(db.session, actor, _data(addressed_cities=["atlantis"]))
    with pytest.raises(Forbidden):
        bulletins.issue(db.session, Actor.for_user(make_user("obs", "linyi", Role.OBSERVER)), _data())
    db.session.rollback()
    assert db.session.scalars(select(Bulletin)).all() == []


def test_restricted_bulletins_are_invisible_to_others(make_user) -> None:
    issuer = Actor.for_user(make_user("ly", "linyi"))
    bulletin = bulletins.issue(db.session, issuer, _data(scope="restricted"))
    db.session.commit()
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    heze = Actor.for_user(make_user("hz", "heze"))
    assert bulletins.get_for(db.session, xuzhou, bulletin.public_id) is bulletin
    with pytest.raises(NotFound):
        bulletins.get_for(db.session, heze, bulletin.public_id)
    assert bulletin not in bulletins.visible_list(db.session, heze.city_id)
    assert bulletin in bulletins.visible_list(db.session, xuzhou.city_id)


def test_receipt_is_recorded_once_and_only_by_addressees(make_user) -> None:
    issuer = Actor.for_user(make_user("ly", "linyi"))
    bulletin = bulletins.issue(db.session, issuer, _data())
    db.session.commit()
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    _, created = bulletins.record_receipt(
        db.session, xuzhou, bulletin.public_id, ReceiptCreate(acknowledged_by="徐州值班员")
    )
    again, created_again = bulletins.record_receipt(
        db.session, xuzhou, bulletin.public_id, ReceiptCreate(acknowledged_by="另一人")
    )
    assert (created, created_again) == (True, False)
    assert again.acknowledged_by == "徐州值班员"
    with pytest.raises(Forbidden):
        bulletins.record_receipt(
            db.session,
            Actor.for_user(make_user("hz", "heze")),
            bulletin.public_id,
            ReceiptCreate(acknowledged_by="x"),
        )


def test_late_cities_are_reminded_then_flagged(make_user) -> None:
    issuer = Actor.for_user(make_user("ly", "linyi"))
    bulletin = bulletins.issue(db.session, issuer, _data())
    db.session.commit()
    bulletins.record_receipt(
        db.session,
        Actor.for_user(make_user("xz", "xuzhou")),
        bulletin.public_id,
        ReceiptCreate(acknowledged_by="徐州"),
    )
    bulletin.receipt_deadline = datetime.now(UTC) - timedelta(minutes=1)
    assert bulletins.chase_late_receipts(db.session) == {"reminded": 1, "flagged": 0}
    assert bulletins.chase_late_receipts(db.session) == {"reminded": 0, "flagged": 0}
    assert bulletins.chase_late_receipts(db.session, flag_after=timedelta(0)) == {"reminded": 0, "flagged": 1}
    db.session.commit()
    flagged = bulletins.flagged_for_issuer(db.session, issuer.city_id)
    assert [r.city.slug for r in flagged] == ["suqian"]
    assert [r.stage for r in db.session.scalars(select(Reminder).order_by(Reminder.id))] == [
        "reminded",
        "flagged",
    ]


def test_a_warning_alerts_the_addressed_cities_linkage_systems(make_user, city) -> None:
    from contracts.mqtt import decode_message
    from hub.fleet import services as fleet
    from hub.fleet.models import VehicleCommand
    from hub.kernel.models import MqttOutbox

    admin = Actor("system", "t", None, Role.ADMIN)
    fleet.register_linkage_system(db.session, admin, city("xuzhou"), "police110", "110", "徐州110")
    fleet.register_linkage_system(db.session, admin, city("heze"), "fire119", "119", "菏泽119")
    fleet.register_vehicle(db.session, admin, city("suqian"), "v01", "宿迁1号")
    fleet.register_vehicle(db.session, admin, city("heze"), "v01", "菏泽1号")
    bulletin = bulletins.issue(db.session, Actor.for_user(make_user("ly", "linyi")), _data())
    db.session.commit()
    notices = db.session.scalars(select(VehicleCommand)).all()  # Suqian is addressed, Heze is not
    assert [(c.vehicle.city.slug, c.kind, c.arguments["title"]) for c in notices] == [
        ("suqian", "notice", "沂河洪水橙色预警")
    ]
    alert = db.session.scalars(
        select(MqttOutbox).where(MqttOutbox.command_id.is_(None))
    ).one()  # Xuzhou is addressed, Heze is not
    assert alert.topic == "hh/v1/xuzhou/linkage/police110/alerts"
    _, payload = decode_message(alert.topic, alert.payload)
    assert (payload.bulletin_id, payload.colour.value, payload.level.roman) == (
        bulletin.public_id,
        "orange",
        "II",
    )


def _redelivery_requests() -> int:
    return len(
        [
            r
            for r in db.session.scalars(select(FlowRequest))
            if r.flow_name == bulletins.DISTRIBUTE and "retry" in r.key
        ]
    )


def test_undelivered_bulletins_are_asked_again_with_backoff_then_given_up(make_user, settings) -> None:
    bulletin = bulletins.issue(
        db.session, Actor.for_user(make_user("ly", "linyi")), _data(addressed_cities=["xuzhou"])
    )
    db.session.commit()
    recipient = bulletin.recipients[0]
    start = datetime.now(UTC)
    base = settings.redeliver_seconds
    bulletins.schedule_deliveries(db.session, start, settings)  # the issue's own round is under way
    assert _redelivery_requests() == 0
    waits = []
    now = start
    while recipient.given_up_at is None and len(waits) < 50:
        due = recipient.next_attempt_at
        assert due is not None
        bulletins.schedule_deliveries(db.session, due - timedelta(seconds=1), settings)  # not yet
        assert recipient.next_attempt_at == due
        now = due
        bulletins.schedule_deliveries(db.session, now, settings)
        if recipient.given_up_at is None:
            waits.append((recipient.next_attempt_at - now).total_seconds())
    assert recipient.redeliveries == bulletins.MAX_REDELIVERIES
    assert _redelivery_requests() == bulletins.MAX_REDELIVERIES
    assert waits[:3] == [2 * base, 4 * base, 8 * base]
    assert max(waits) <= bulletins.MAX_BACKOFF.total_seconds()
    assert bulletins.not_delivered(bulletin) == [recipient]
    # Retry now starts afresh, audited, for the issuing city only.
    with pytest.raises(Forbidden):
        bulletins.retry_now(db.session, Actor.for_user(make_user("xz", "xuzhou")), bulletin.public_id)
    bulletins.retry_now(db.session, Actor.for_user(make_user("ly2", "linyi")), bulletin.public_id)
    assert recipient.given_up_at is None and recipient.redeliveries == 0
    assert any(
        r.key.startswith(f"{bulletins.DISTRIBUTE}:{bulletin.public_id}:now-")
        for r in db.session.scalars(select(FlowRequest))
    )


def test_the_chase_is_asked_for_only_when_a_receipt_is_due_a_reminder_or_a_flag(app, make_user) -> None:
    from hub.app import settings_of

    settings = settings_of(app)

    def chase_requests() -> int:
        return len(
            db.session.scalars(select(FlowRequest).where(FlowRequest.flow_name == bulletins.CHASE)).all()
        )

    now = datetime.now(UTC)
    bulletins.schedule_chase(db.session, now, settings)
    assert chase_requests() == 0  # nothing issued: no run left behind
    bulletin = bulletins.issue(db.session, Actor.for_user(make_user("ly", "linyi")), _data())
    db.session.commit()
    bulletins.schedule_chase(db.session, now, settings)
    assert chase_requests() == 0  # receipts not late yet
    late = bulletin.receipt_deadline + timedelta(seconds=1)
    bulletins.schedule_chase(db.session, late, settings)
    assert chase_requests() == 1
    for recipient in bulletin.recipients:
        recipient.reminded_at = late
    db.session.commit()
    bulletins.schedule_chase(db.session, late + timedelta(minutes=1), settings)
    assert chase_requests() == 1  # reminded, not yet due a flag
    bulletins.schedule_chase(db.session, late + bulletins.FLAG_AFTER, settings)
    assert chase_requests() == 2


def test_the_inbox_keeps_an_old_unsigned_bulletin_above_newer_signed_ones(make_user) -> None:
    issuer = Actor.for_user(make_user("ly", "linyi"))
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    unsigned = bulletins.issue(db.session, issuer, _data(title="未签收的旧通报"))
    signed = []
    for n in range(4):
        bulletin = bulletins.issue(db.session, issuer, _data(title=f"已签收 {n}"))
        bulletins.record_receipt(
            db.session, xuzhou, bulletin.public_id, ReceiptCreate(acknowledged_by="值班员")
        )
        signed.append(bulletin.id)
    db.session.commit()
    shown = [b.id for b in bulletins.inbox(db.session, xuzhou.city_id, limit=3)]
    assert shown == [unsigned.id, signed[3], signed[2]]
