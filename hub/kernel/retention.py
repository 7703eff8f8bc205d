"""Prune what the hub no longer needs, so that no kernel table grows without bound.

Kept for a number of days each (settings `retention_*_days`): finished flow requests (done or
failed), published MQTT outbox rows, reminders (a row is written when the reminder is sent),
dead letters, and hub nodes not seen for as long as finished flow requests are kept. Pending
and started flow requests and unpublished outbox rows are never pruned, however old: they are
work still to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute

from hub.kernel import flow_requests
from hub.kernel.models import DeadLetter, FlowRequest, FlowRequestStatus, HubNode, MqttOutbox, Reminder
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings

PRUNE = "prune-retention"


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each table keeps its rows, and how many rows one statement deletes."""

    flow_requests: timedelta
    mqtt_outbox: timedelta
    reminders: timedelta
    dead_letters: timedelta
    # Small deletes keep each statement's locks short, so the outbox writers never wait long;
    # a call stops after `max_batches` per table, so one transaction stays bounded too.
    batch_size: int = 1000
    max_batches: int = 20

    @property
    def most_per_call(self) -> int:
        """Return the most rows of one table that one `prune` call deletes."""
        return self.batch_size * self.max_batches

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """Return the policy the settings describe."""
        return cls(
            flow_requests=timedelta(days=settings.retention_flow_requests_days),
            mqtt_outbox=timedelta(days=settings.retention_mqtt_outbox_days),
            reminders=timedelta(days=settings.retention_reminders_days),
            dead_letters=timedelta(days=settings.retention_dead_letters_days),
        )


def _prunable(
    now: datetime, policy: RetentionPolicy
) -> dict[str, tuple[InstrumentedAttribute[Any], ColumnElement[bool]]]:
    """Return, by table name, its id column and the condition its prunable rows meet."""
    finished = (FlowRequestStatus.DONE, FlowRequestStatus.FAILED)
    return {
        "flow_requests": (
            FlowRequest.id,
            FlowRequest.status.in_(finished)
            & (func.coalesce(FlowRequest.finished_at, FlowRequest.created_at) < now - policy.flow_requests),
        ),
        "mqtt_outbox": (MqttOutbox.id, MqttOutbox.published_at < now - policy.mqtt_outbox),
        "reminders": (Reminder.id, Reminder.created_at < now - policy.reminders),
        "dead_letters": (DeadLetter.id, DeadLetter.received_at < now - policy.dead_letters),
        "hub_nodes": (HubNode.name, HubNode.last_seen_at < now - policy.flow_requests),
    }


def prune(session: DbSession, now: datetime, policy: RetentionPolicy) -> dict[str, int]:
    """Delete, in batches, the rows older than the policy keeps; return how many per table.

    At most `policy.most_per_call` rows per table: a caller that got that many calls again,
    in a new transaction.
    """
    removed: dict[str, int] = {}
    for table, (id_column, condition) in _prunable(now, policy).items():
        removed[table] = 0
        for _ in range(policy.max_batches):
            query = select(id_column).where(condition).order_by(id_column).limit(policy.batch_size)
            ids = list(session.scalars(query))
            if ids:
                session.execute(
                    delete(id_column.class_)
                    .where(id_column.in_(ids))
                    .execution_options(synchronize_session=False)
                )
                removed[table] += len(ids)
            if len(ids) < policy.batch_size:
                break
    return removed


def more_left(removed: dict[str, int], policy: RetentionPolicy) -> bool:
    """Tell whether a `prune` call that removed these counts may have left prunable rows."""
    return any(count >= policy.most_per_call for count in removed.values())


def schedule_prune(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask, once per local day, for the run that prunes the kernel's tables."""
    day = now.astimezone(ZoneInfo(settings.timezone)).date().isoformat()
    flow_requests.enqueue(session, PRUNE, key=f"{PRUNE}:{day}", parameters={"day": day})
