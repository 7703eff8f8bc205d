"""Realistic history for the benchmarks, written through the hub's own services.

`RegionWriter` files incidents (with a follow-up report and two notifications) and bulletins
(to three cities, with their receipts) as the ten cities' coordinators; `age` moves what it
wrote into the past and closes it, and `settle` marks the flow requests and MQTT messages it
made as run and sent then, so that a database can hold a month of history the way the hub
would have left it. `write_month` does both for a running demo's SQLite database.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from contracts.bulletins import BulletinCreate
from contracts.common import IncidentCategory, IncidentLevel, IncidentStatus
from contracts.incidents import FollowUpCreate, IncidentCreate
from flows.mqtt_bridge import THIN_BATCH
from hub.app import create_core_app
from hub.bulletins import services as bulletins
from hub.bulletins.models import Bulletin, BulletinRecipient
from hub.config import Settings
from hub.extensions import db
from hub.fleet import ingest
from hub.fleet.models import Vehicle
from hub.incidents import notifications
from hub.incidents import services as incidents
from hub.incidents.models import Incident, IncidentReport, Notification
from hub.kernel import retention
from hub.kernel.actors import Actor
from hub.kernel.models import City, FlowRequest, FlowRequestStatus, MqttOutbox, Role
from hub.kernel.types import utcnow

ROOT = "hh"


class RegionWriter:
    """Files incidents and bulletins as the ten cities' coordinators would."""

    def __init__(self, session: Session, mqtt_root: str = ROOT) -> None:
        self.session = session
        self.mqtt_root = mqtt_root
        cities = {c.slug: c for c in session.scalars(sa.select(City))}
        self.coordinators = {
            slug: Actor("user", f"bench-{slug}", city.id, Role.COORDINATOR) for slug, city in cities.items()
        }
        self.slugs = sorted(self.coordinators)

    def incident(self, index: int) -> int:
        """File an incident with a follow-up report, notify two cities; return its id."""
        slugs = self.slugs
        reporting = slugs[index % len(slugs)]
        neighbour = slugs[(index + 1) % len(slugs)]
        created = incidents.create_incident(
            self.session,
            self.coordinators[reporting],
            IncidentCreate(
                category=IncidentCategory.NATURAL,
                level=IncidentLevel.III,
                title=f"沂河水位上涨 {index}",
                description="沂河临沂段水位持续上涨，沿河低洼地带已组织群众转移。" * 3,
                location="临沂市兰山区沂河路",
                occurred_at=datetime.now(UTC) - timedelta(hours=1),
                affected_cities=(reporting, neighbour),
            ),
        )
        incidents.add_report(
            self.session,
            self.coordinators[reporting],
            created.id,
            FollowUpCreate(body="水位已回落 0.3 米，转移群众 1,200 人，无人员伤亡。"),
        )
        for slug in (neighbour, slugs[(index + 2) % len(slugs)]):
            notifications.deliver(
                self.session, created.id, slug, "neighbour", flow_run_id=None, mqtt_root=self.mqtt_root
            )
        return created.id

    def bulletin(self, index: int) -> int:
        """Issue a bulletin to three cities; return its id."""
        slugs = self.slugs
        issuer = slugs[index % len(slugs)]
        addressed = tuple(slugs[(index + k) % len(slugs)] for k in (1, 2, 3))
        issued = bulletins.issue(
            self.session,
            self.coordinators[issuer],
            BulletinCreate(
                category=IncidentCategory.NATURAL,
                area="沂河沿线",
                title=f"关于做好强降雨防范工作的通报 {index}",
                text="预计未来 24 小时沂河流域有大到暴雨，请各市做好防范。" * 4,
                addressed_cities=addressed,
                receipt_deadline=datetime.now(UTC) + timedelta(hours=2),
            ),
            mqtt_root=self.mqtt_root,
        )
        return issued.id


def age(session: Session, incident_ids: dict[int, datetime], bulletin_ids: dict[int, datetime]) -> None:
    """Move incidents and bulletins to the given times and close them, as a month's history is.

    Incidents are closed, their notifications read and reports filed around that time;
    bulletins are delivered and signed within ten minutes, so none of it is urgent today.
    """
    for incident_id, at in incident_ids.items():
        session.execute(
            sa.update(Incident)
            .where(Incident.id == incident_id)
            .values(
                occurred_at=at - timedelta(hours=1),
                reported_at=at,
                updated_at=at,
                status=IncidentStatus.CLOSED,
            )
        )
        session.execute(
            sa.update(IncidentReport)
            .where(IncidentReport.incident_id == incident_id)
            .values(reported_at=at + timedelta(hours=2))
        )
        session.execute(
            sa.update(Notification)
            .where(Notification.incident_id == incident_id)
            .values(created_at=at, read_at=at + timedelta(minutes=5))
        )
    for bulletin_id, at in bulletin_ids.items():
        session.execute(
            sa.update(Bulletin)
            .where(Bulletin.id == bulletin_id)
            .values(issued_at=at, receipt_deadline=at + timedelta(hours=2))
        )
        session.execute(
            sa.update(BulletinRecipient)
            .where(BulletinRecipient.bulletin_id == bulletin_id)
            .values(
                delivered_at=at + timedelta(seconds=5),
                receipt_at=at + timedelta(minutes=10),
                receipt_forwarded_at=at + timedelta(minutes=11),
                acknowledged_by="值班员",
                signed_via="hub",
            )
        )


def _newest_work(session: Session) -> tuple[int, int]:
    """Return the newest flow request's id and the newest outbox message's (0 when none)."""
    session.flush()
    return (
        session.scalar(sa.select(sa.func.max(FlowRequest.id))) or 0,
        session.scalar(sa.select(sa.func.max(MqttOutbox.id))) or 0,
    )


def settle(session: Session, spans: list[tuple[datetime, tuple[int, int], tuple[int, int]]]) -> None:
    """Mark the history's flow requests done and its MQTT messages sent, at the history's times.

    Each span is an item's time and the ids (after, up to) of the flow requests and the outbox
    messages filing it made. The hub would have run and sent them then; left pending, the running
    demo would spend the minutes after the history working through a month's backlog, and the
    pages would be timed against that rather than against the month's data.
    """
    for at, (request_after, request_last), (message_after, message_last) in spans:
        session.execute(
            sa.update(FlowRequest)
            .where(FlowRequest.id > request_after, FlowRequest.id <= request_last)
            .values(
                status=FlowRequestStatus.DONE,
                attempts=1,
                created_at=at,
                started_at=at,
                finished_at=at + timedelta(seconds=2),
            )
        )
        session.execute(
            sa.update(MqttOutbox)
            .where(MqttOutbox.id > message_after, MqttOutbox.id <= message_last)
            .values(created_at=at, published_at=at + timedelta(seconds=1), attempts=1)
        )


def position_rows(
    vehicle_ids: list[int], start: datetime, end: datetime, every: timedelta
) -> Iterator[tuple[object, ...]]:
    """Yield position rows (as POSITION_INSERT takes them) for each vehicle from `start` to `end`,
    one per `every`, moving slowly; times in SQLite's text form of the hub's UTC columns."""
    step = every.total_seconds()
    count = int((end - start).total_seconds() // step)
    for index in range(count):
        at = (start + timedelta(seconds=index * step)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        for vehicle_id in vehicle_ids:
            yield (
                vehicle_id,
                at,
                index,
                34.2 + (index % 1000) * 1e-5,
                117.2 + (index % 777) * 1e-5,
                float(index % 90),
                float(index % 360),
                at,
            )


# Straight to the driver: six million rows through the ORM's type processing take many minutes.
POSITION_INSERT = (
    "INSERT INTO vehicle_positions"
    " (vehicle_id, at, seq, latitude, longitude, speed_kmh, heading, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


# A month of history in a running demo's database --------------------------------------------------

INCIDENTS_A_DAY = 55  # 20,000 a year: the region's busy figure in the sizing table
BULLETINS_A_DAY = 14  # 5,000 a year
POSITION_BATCH = 20_000  # rows a transaction, so the hub's own writer never waits long


def write_month(instance: Path, days: int) -> tuple[dict[str, str], dict[str, str]]:
    """Write `days` of history into the hub database in `instance`; time the hourly maintenance.

    Returns what was written and what the maintenance took, as printable rows.
    """
    settings = Settings(
        secret_key="bench-" + os.urandom(8).hex(),
        encryption_key=Fernet.generate_key().decode(),
        instance_path=instance,
    )
    app = create_core_app(settings)
    now = utcnow()
    written: dict[str, str] = {}
    with app.app_context():
        writer = RegionWriter(db.session)
        started = time.perf_counter()
        incident_times = _spread(now, days, INCIDENTS_A_DAY * days)
        bulletin_times = _spread(now, days, BULLETINS_A_DAY * days)
        spans: list[tuple[datetime, tuple[int, int], tuple[int, int]]] = []
        incident_ids: dict[int, datetime] = {}
        bulletin_ids: dict[int, datetime] = {}
        for items, write, ids in (
            (incident_times, writer.incident, incident_ids),
            (bulletin_times, writer.bulletin, bulletin_ids),
        ):
            for i, at in enumerate(items):
                before = _newest_work(db.session)
                ids[write(i)] = at
                after = _newest_work(db.session)
                spans.append((at, (before[0], after[0]), (before[1], after[1])))
        age(db.session, incident_ids, bulletin_ids)
        settle(db.session, spans)
        db.session.commit()
        written["incidents (closed)"] = f"{len(incident_ids):,}"
        written["bulletins (signed)"] = f"{len(bulletin_ids):,}"
        written["time to write them"] = f"{time.perf_counter() - started:,.0f} s"

        started = time.perf_counter()
        vehicles = list(db.session.scalars(sa.select(Vehicle.id)))
        thin_after = timedelta(days=settings.position_thin_after_days)
        raw_from = now - thin_after - timedelta(hours=1)  # an hour's thinning still to do
        # The live demo writes from a few minutes ago on; the history stops before it.
        raw_until = now - timedelta(minutes=15)
        positions = 0
        for start, end, every in (
            (now - timedelta(days=days + 1), raw_from, timedelta(minutes=1)),  # a day past retention
            (raw_from, raw_until, timedelta(seconds=1)),
        ):
            rows = position_rows(vehicles, start, end, every)
            while batch := list(islice(rows, POSITION_BATCH)):
                db.session.connection().exec_driver_sql(POSITION_INSERT, batch)
                db.session.commit()
                positions += len(batch)
        written[f"positions ({len(vehicles)} vehicles)"] = f"{positions:,}"
        written["time to write them "] = f"{time.perf_counter() - started:,.0f} s"
        maintenance = _maintain(settings)
        db.session.remove()
        db.engine.dispose()
    return written, maintenance


def _spread(now: datetime, days: int, count: int) -> list[datetime]:
    """Return `count` times spread evenly over the `days` before the last one."""
    span = timedelta(days=days - 1)
    return [now - timedelta(days=days) + span * (i / max(count, 1)) for i in range(count)]


def _maintain(settings: Settings) -> dict[str, str]:
    """Run the hourly maintenance as the MQTT bridge and the retention job do; time each part."""
    timings: dict[str, str] = {}
    started = time.perf_counter()
    thinned = 0
    while True:  # one transaction a batch, as the bridge does
        batch = ingest.thin_positions(
            db.session, utcnow(), timedelta(days=settings.position_thin_after_days), THIN_BATCH
        )
        db.session.commit()
        thinned += batch
        if batch < THIN_BATCH:
            break
    timings["thinning an hour of positions"] = f"{thinned:,} rows in {time.perf_counter() - started:,.1f} s"
    started = time.perf_counter()
    removed = ingest.prune_positions(db.session, timedelta(days=settings.position_retention_days))
    db.session.commit()
    timings["positions past retention"] = f"{removed:,} rows in {time.perf_counter() - started:,.1f} s"
    started = time.perf_counter()
    pruned = retention.prune(db.session, utcnow(), retention.RetentionPolicy.from_settings(settings))
    db.session.commit()
    timings["retention job"] = f"{sum(pruned.values()):,} rows in {time.perf_counter() - started:,.2f} s"
    return timings
