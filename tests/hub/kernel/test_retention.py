"""The retention job: old finished rows go, young ones and unfinished work stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from hub.capabilities import flow_names, schedules
from hub.config import Settings
from hub.extensions import db
from hub.kernel import retention
from hub.kernel.models import DeadLetter, FlowRequest, FlowRequestStatus, HubNode, MqttOutbox, Reminder
from hub.kernel.retention import RetentionPolicy

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
POLICY = RetentionPolicy(
    flow_requests=timedelta(days=7),
    mqtt_outbox=timedelta(days=7),
    reminders=timedelta(days=90),
    dead_letters=timedelta(days=30),
)


def _request(key: str, status: str, age: timedelta, *, finished: bool = True) -> FlowRequest:
    at = NOW - age
    request = FlowRequest(
        flow_name="notify-neighbours",
        key=key,
        parameters={},
        status=status,
        created_at=at,
        finished_at=at if finished else None,
    )
    db.session.add(request)
    return request


def _outbox(age: timedelta, *, published: bool = True) -> MqttOutbox:
    row = MqttOutbox(
        topic="hh/test",
        payload=b"{}",
        created_at=NOW - age,
        published_at=NOW - age if published else None,
    )
    db.session.add(row)
    return row


def _reminder(city_id: int, subject_id: int, age: timedelta) -> Reminder:
    row = Reminder(
        kind="receipt", subject_id=subject_id, city_id=city_id, stage="reminded", created_at=NOW - age
    )
    db.session.add(row)
    return row


def _dead_letter(age: timedelta) -> DeadLetter:
    row = DeadLetter(source="mqtt", topic="hh/x", reason="bad", received_at=NOW - age, size=2, payload=b"{}")
    db.session.add(row)
    return row


def _node(name: str, quiet_for: timedelta) -> HubNode:
    row = HubNode(
        name=name, roles=["web"], host="h", pid=1, started_at=NOW - quiet_for, last_seen_at=NOW - quiet_for
    )
    db.session.add(row)
    return row


def _count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_old_finished_rows_go_and_young_or_unfinished_ones_stay(city) -> None:
    old, young = timedelta(days=8), timedelta(days=6)
    _request("done-old", FlowRequestStatus.DONE, old)
    _request("failed-old", FlowRequestStatus.FAILED, old)
    _request("failed-never-finished", FlowRequestStatus.FAILED, old, finished=False)
    kept_requests = [
        _request("done-young", FlowRequestStatus.DONE, young),
        _request("pending-old", FlowRequestStatus.PENDING, timedelta(days=40), finished=False),
        _request("started-old", FlowRequestStatus.STARTED, timedelta(days=40), finished=False),
    ]
    _outbox(old)
    kept_outbox = [_outbox(young), _outbox(timedelta(days=40), published=False)]
    xuzhou = city("xuzhou").id
    _reminder(xuzhou, 1, timedelta(days=91))
    kept_reminder = _reminder(xuzhou, 2, timedelta(days=89))
    _dead_letter(timedelta(days=31))
    kept_letter = _dead_letter(timedelta(days=29))
    _node("gone", old)
    _node("restarted-last-week", young)
    db.session.commit()
    kept_request_ids = sorted(r.id for r in kept_requests)
    kept_outbox_ids = sorted(r.id for r in kept_outbox)
    kept_reminder_id, kept_letter_id = kept_reminder.id, kept_letter.id

    removed = retention.prune(db.session, NOW, POLICY)
    db.session.commit()

    assert removed == {
        "flow_requests": 3,
        "mqtt_outbox": 1,
        "reminders": 1,
        "dead_letters": 1,
        "hub_nodes": 1,
    }
    assert sorted(db.session.scalars(select(FlowRequest.id))) == kept_request_ids
    assert sorted(db.session.scalars(select(MqttOutbox.id))) == kept_outbox_ids
    assert list(db.session.scalars(select(Reminder.id))) == [kept_reminder_id]
    assert list(db.session.scalars(select(DeadLetter.id))) == [kept_letter_id]
    assert list(db.session.scalars(select(HubNode.name))) == ["restarted-last-week"]
    assert retention.prune(db.session, NOW, POLICY) == dict.fromkeys(removed, 0)


def test_one_call_deletes_in_batches_and_stops_at_its_bound(app) -> None:
    for _ in range(7):
        _dead_letter(timedelta(days=31))
    db.session.commit()
    small = RetentionPolicy(
        flow_requests=timedelta(days=7),
        mqtt_outbox=timedelta(days=7),
        reminders=timedelta(days=90),
        dead_letters=timedelta(days=30),
        batch_size=2,
        max_batches=2,
    )

    first = retention.prune(db.session, NOW, small)
    assert first["dead_letters"] == 4 and retention.more_left(first, small)
    second = retention.prune(db.session, NOW, small)
    assert second["dead_letters"] == 3 and not retention.more_left(second, small)
    assert _count(DeadLetter) == 0


def test_policy_comes_from_settings() -> None:
    settings = Settings(secret_key="x", retention_reminders_days=45)
    policy = RetentionPolicy.from_settings(settings)
    assert policy.reminders == timedelta(days=45)
    assert policy.flow_requests == timedelta(days=7)
    assert policy.dead_letters == timedelta(days=30)


def test_the_scheduler_asks_for_one_run_per_local_day(settings: Settings, app) -> None:
    assert next(iter(schedules())).enqueue is retention.schedule_prune
    assert flow_names()[retention.PRUNE] == "flows.retention:prune_retention"
    # 16:30 UTC is already the next day in Asia/Shanghai.
    for at in (datetime(2026, 6, 1, 16, 30, tzinfo=UTC), datetime(2026, 6, 2, 9, 0, tzinfo=UTC)):
        retention.schedule_prune(db.session, at, settings)
    retention.schedule_prune(db.session, datetime(2026, 6, 2, 17, 0, tzinfo=UTC), settings)
    keys = sorted(db.session.scalars(select(FlowRequest.key).where(FlowRequest.flow_name == retention.PRUNE)))
    assert keys == ["prune-retention:2026-06-02", "prune-retention:2026-06-03"]
