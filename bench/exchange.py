"""Benchmark: a bulletin to nine city platforms until each has it, and the sync of ten platforms.

Run from the repository root: `.venv/bin/python bench/exchange.py [--quick]`. It starts the hub's
managed Prefect server (`hub.runtime.ManagedPrefectServer`, as `hub run` does, in a temporary
PREFECT_HOME), a fresh SQLite database (WAL) migrated with the project's migrations and seeded with
the ten cities, and the partner simulators of `connectors.sims.partner` over real sockets.

1. Bulletin -> nine platforms. Nine simulators (every city but the issuer, receipts "immediate":
   an answer the hub records as the platform having it, 平台已接收, never as a person's signature)
   are registered with `partners.register`. Each round issues a bulletin addressed to the nine
   with `bulletins.issue` and commits, as the web layer does, then wakes the hub's
   `FlowDispatcher(LocalLauncher())` (what `kick_flows` does); the dispatcher claims the outbox
   request and runs `distribute_bulletin`, which delivers to the nine platforms with Prefect task
   `.submit`. Timed from the return of the issuing commit to the return of the commit that
   records the ninth platform's acceptance (an SQLAlchemy `after_commit` listener notes it;
   nothing polls). No signature may appear: only people sign.
   The breakdown comes from the outbox row (claim time), the Prefect API (flow and task run
   start and end) and the simulators (arrival and handling time of each delivery).
2. Sync. Ten simulators of 10,000 records each (incidents 4,000, warnings 1,000, resources
   5,000) are synced one city after another with `sync_partner`: in full, then again with no
   change (the fixed cost), then after `change()` of 1 % of each platform's records. The
   database must hold exactly 100,000 partner records throughout, and exactly 1,000 with a
   `synced_at` that moved in the incremental run.

Prints tables; exits 1 only on a real failure (a delivery lost or doubled or taken for a signature,
a record missing or extra), never on a slow figure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _common import (
    BENCH_ACTOR,
    machine,
    make_hub_app,
    percentile,
    print_table,
    process_cpu,
    start_prefect_server,
)
from flask import Flask
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from connectors.partner_client import PartnerClient
from connectors.sims.partner import PartnerSimulator
from contracts.bulletins import BulletinCreate
from flows.context import current_app, hub_session, use_app
from hub.app import settings_of
from hub.bulletins import services as bulletins
from hub.bulletins.models import BulletinRecipient
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import AuditEntry, City, FlowRequest, Role
from hub.kernel.types import utcnow
from hub.partners import services as partners
from hub.partners.models import PartnerRecord

ISSUER = "linyi"
# Sync: records per platform and feed (incidents, warnings, resources): 10,000 a platform.
SYNC_SPLIT = (4_000, 1_000, 5_000)
CHANGED_SHARE = 0.01
RECEIPT_TIMEOUT = 30.0
WARMUP = 2


# Where the time goes: simulators and the database ------------------------------------------------


@dataclass
class Arrival:
    """One bulletin delivery as a simulator saw it."""

    city: str
    arrived: float  # wall clock when the request's headers had been read
    seconds: float  # until the answer had been written


class TimedSimulator(PartnerSimulator):
    """A partner simulator that notes when each bulletin delivery arrived and how long it took."""

    def __init__(self, city: str, **options: Any) -> None:
        super().__init__(city, **options)
        self.arrivals: list[Arrival] = []

    def _handle(self, handler: Any, method: str) -> None:
        started = time.time()
        clock = time.perf_counter()
        super()._handle(handler, method)
        if method == "POST" and handler.path.startswith("/bulletins"):
            with self._lock:
                self.arrivals.append(Arrival(self.city, started, time.perf_counter() - clock))


class ReceiptWatch:
    """Note the wall time of every commit that records a platform's acceptance, by bulletin."""

    def __init__(self) -> None:
        self.commits: dict[int, list[tuple[int, float]]] = {}
        self._condition = threading.Condition()

    def install(self) -> None:
        event.listen(Session, "after_flush", self._after_flush)
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_rollback", self._after_rollback)

    def remove(self) -> None:
        event.remove(Session, "after_flush", self._after_flush)
        event.remove(Session, "after_commit", self._after_commit)
        event.remove(Session, "after_rollback", self._after_rollback)

    def _after_flush(self, session: Session, context: Any) -> None:
        for obj in session.dirty:
            if isinstance(obj, BulletinRecipient):
                added = inspect(obj).attrs.delivered_at.history.added
                if added and added[0] is not None:
                    session.info.setdefault("bench_receipts", []).append((obj.bulletin_id, obj.id))

    def _after_commit(self, session: Session) -> None:
        pending = session.info.pop("bench_receipts", None)
        if not pending:
            return
        now = time.time()
        with self._condition:
            for bulletin_id, recipient_id in pending:
                self.commits.setdefault(bulletin_id, []).append((recipient_id, now))
            self._condition.notify_all()

    def _after_rollback(self, session: Session) -> None:
        session.info.pop("bench_receipts", None)

    def wait(self, bulletin_id: int, count: int, timeout: float) -> list[tuple[int, float]]:
        """Wait until `count` receipt commits of the bulletin were seen; return them."""
        with self._condition:
            self._condition.wait_for(lambda: len(self.commits.get(bulletin_id, ())) >= count, timeout)
            return list(self.commits.get(bulletin_id, ()))


class PrefectRetries(logging.Handler):
    """Count the Prefect client's retries of API calls the server answered 503 (or 429).

    The Prefect server on SQLite answers 503 when its database is locked; the client then sleeps
    2 s (with jitter) before trying again. The client logs each retry at DEBUG on
    `prefect.client`; this handler notes when and how long, and shows nothing.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.retries: list[tuple[float, float, str]] = []

    def install(self) -> None:
        client_log = logging.getLogger("prefect.client")
        client_log.setLevel(logging.DEBUG)
        client_log.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "retryable" not in message:
            return
        found = re.search(r"made in ([0-9.]+)s", message)
        status = re.search(r"status code (\d+)", message)
        self.retries.append(
            (record.created, float(found.group(1)) if found else math.nan, status.group(1) if status else "?")
        )

    def between(self, start: float, end: float) -> list[tuple[float, float, str]]:
        return [r for r in self.retries if start <= r[0] <= end]


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll `check` until it holds or `timeout` passes; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


# 1. Bulletin -> nine receipts ---------------------------------------------------------------------


@dataclass
class Round:
    """What one bulletin's distribution measured; times are wall-clock seconds since the epoch."""

    bulletin_id: int
    issue_seconds: float
    committed: float
    receipts: list[float]
    claimed: float | None = None
    request_finished: float | None = None
    flow_run_id: str | None = None
    flow_created: float | None = None
    flow_started: float | None = None
    flow_ended: float | None = None
    task_starts: list[float] = field(default_factory=list)
    task_ends: list[float] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    retries_before: int = 0  # Prefect client retries between the commit and the ninth receipt
    retries_after: int = 0  # and between the ninth receipt and the end of the request

    @property
    def total(self) -> float:
        return max(self.receipts) - self.committed if len(self.receipts) else float("nan")


def _bulletin_data(index: int, addressed: list[str]) -> BulletinCreate:
    return BulletinCreate.model_validate(
        {
            "kind": "warning",
            "colour": "orange",
            "category": "natural_disaster",
            "area": "沂河流域",
            "title": f"沂河洪水橙色预警（第{index + 1}期）",
            "text": "预计未来12小时沂河临沂段水位超警戒，请沿线各市做好防范。",
            "addressed_cities": addressed,
            "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
        }
    )


def issue_and_wait(
    app: Flask, actor: Actor, dispatcher: Any, watch: ReceiptWatch, index: int, addressed: list[str]
) -> Round:
    """Issue one bulletin as the web layer does, wake the dispatcher, wait for every receipt."""
    with app.app_context():
        started = time.perf_counter()
        bulletin = bulletins.issue(db.session, actor, _bulletin_data(index, addressed))
        db.session.commit()
        committed = time.time()
        issue_seconds = time.perf_counter() - started
        bulletin_id = bulletin.id
        db.session.remove()
    dispatcher.wake()  # what web.kick.kick_flows does after the commit
    receipts = watch.wait(bulletin_id, len(addressed), RECEIPT_TIMEOUT)
    return Round(bulletin_id, issue_seconds, committed, [at for _, at in receipts])


def request_of(bulletin_id: int) -> FlowRequest | None:
    with hub_session() as session:
        request = session.scalar(
            sa.select(FlowRequest).where(
                FlowRequest.flow_name == bulletins.DISTRIBUTE,
                FlowRequest.parameters["bulletin_id"].as_integer() == bulletin_id,
            )
        )
        if request is not None:
            session.expunge(request)
        return request


def request_done(bulletin_id: int) -> bool:
    request = request_of(bulletin_id)
    return request is not None and request.finished_at is not None


def add_prefect_times(rounds: list[Round], retries: PrefectRetries) -> None:
    """Fill in the outbox claim time and the Prefect flow and task run times of each round."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        for r in rounds:
            request = request_of(r.bulletin_id)
            if request is None:
                continue
            r.claimed = request.started_at.timestamp() if request.started_at else None
            r.request_finished = request.finished_at.timestamp() if request.finished_at else None
            r.flow_run_id = request.flow_run_id
            last = max(r.receipts, default=r.committed)
            r.retries_before = len(retries.between(r.committed, last))
            r.retries_after = len(retries.between(last, r.request_finished or last + 30))
            if not request.flow_run_id:
                continue
            run_id = UUID(request.flow_run_id)
            run = client.read_flow_run(run_id)
            r.flow_created = run.created.timestamp() if run.created else None
            r.flow_started = run.start_time.timestamp() if run.start_time else None
            r.flow_ended = run.end_time.timestamp() if run.end_time else None
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
            r.task_starts = sorted(t.start_time.timestamp() for t in tasks if t.start_time)
            r.task_ends = sorted(t.end_time.timestamp() for t in tasks if t.end_time)


def bulletin_benchmark(
    app: Flask, runs: int, warmup: int, retries: PrefectRetries, failures: list[str]
) -> dict[str, Any]:
    """Start nine platforms, issue `warmup + runs` bulletins one after another, time each."""
    from flows.launcher import FlowDispatcher, LocalLauncher

    with app.app_context():
        all_cities = list(db.session.scalars(sa.select(City).order_by(City.slug)))
        issuer = next(c for c in all_cities if c.slug == ISSUER)
        addressed = [c.slug for c in all_cities if c.slug != ISSUER]
        # The API's actor for a city's bearer token: a coordinator of the issuing city.
        actor = Actor("partner", "token:bench", issuer.id, Role.COORDINATOR)
        db.session.remove()

    sims: dict[str, TimedSimulator] = {}
    watch = ReceiptWatch()
    dispatcher = FlowDispatcher(LocalLauncher())  # the hub's settings: 4 flow threads, 2 s poll
    rounds: list[Round] = []
    try:
        with app.app_context():
            for slug in addressed:
                sim = TimedSimulator(
                    slug, token=f"token-{slug}", seed=11, initial=(5, 2, 5), receipt_mode="immediate"
                )
                sims[slug] = sim.start()
                city = db.session.scalar(sa.select(City).where(City.slug == slug))
                partners.register(
                    db.session, BENCH_ACTOR, city, sim.url, f"token-{slug}", settings=settings_of(app)
                )
            db.session.commit()
            db.session.remove()
        watch.install()
        dispatcher.start(recover=True)
        for index in range(warmup + runs):
            arrivals_before = {slug: len(sim.arrivals) for slug, sim in sims.items()}
            r = issue_and_wait(app, actor, dispatcher, watch, index, addressed)
            if len(r.receipts) != len(addressed):
                failures.append(
                    f"bulletin {r.bulletin_id}: {len(r.receipts)} of {len(addressed)} receipts "
                    f"within {RECEIPT_TIMEOUT:.0f} s"
                )
            # Let the flow run end (hooks, Prefect states) so rounds do not overlap.
            if not wait_until(lambda bid=r.bulletin_id: request_done(bid), timeout=30):
                failures.append(f"bulletin {r.bulletin_id}: its distribution request did not finish")
            r.arrivals = [a for slug, sim in sims.items() for a in sim.arrivals[arrivals_before[slug] :]]
            rounds.append(r)
            time.sleep(0.2)
    finally:
        dispatcher.stop()
        watch.remove()
        for sim in sims.values():
            sim.stop()

    # Correctness: one acceptance per city and bulletin, no signature, one delivery per platform.
    issued = [r.bulletin_id for r in rounds]
    with hub_session() as session:
        receipts = session.scalar(
            sa.select(sa.func.count())
            .select_from(BulletinRecipient)
            .where(BulletinRecipient.bulletin_id.in_(issued), BulletinRecipient.delivered_at.is_not(None))
        )
        receipt_events = session.scalar(
            sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "bulletin.receipt")
        )
        failed_requests = session.scalar(
            sa.select(sa.func.count()).select_from(FlowRequest).where(FlowRequest.last_error.is_not(None))
        )
    expected = len(issued) * len(addressed)
    if receipts != expected or receipt_events != 0:
        failures.append(
            f"accepted: {receipts} rows (expected {expected}), {receipt_events} signatures (expected 0)"
        )
    for slug, sim in sims.items():
        if sim.stats.bulletins != len(issued) or sim.stats.bulletin_duplicates:
            failures.append(
                f"{slug} received {sim.stats.bulletins} bulletins ({sim.stats.bulletin_duplicates} "
                f"repeated) of {len(issued)}"
            )
    if failed_requests:
        failures.append(f"{failed_requests} distribution requests recorded an error")
    add_prefect_times(rounds, retries)
    return {
        "rounds": rounds,
        "warmup": warmup,
        "receipts": receipts,
        "expected": expected,
        "duplicates": sum(s.stats.bulletin_duplicates for s in sims.values()),
    }


def report_bulletins(result: dict[str, Any]) -> float:
    """Print the bulletin tables; return the p99 of the measured rounds."""
    rounds: list[Round] = result["rounds"]
    cold, measured = rounds[: result["warmup"]], rounds[result["warmup"] :]

    def series(pick: Callable[[Round], float | None]) -> list[float]:
        return [v for v in (pick(r) for r in measured) if v is not None]

    def line(label: str, values: list[float]) -> tuple[str, str]:
        if not values:
            return label, "-"
        return label, (
            f"p50 {percentile(values, 0.5) * 1e3:7.1f} ms   p99 {percentile(values, 0.99) * 1e3:7.1f} ms"
            f"   max {max(values) * 1e3:7.1f} ms"
        )

    totals = series(lambda r: r.total)
    p99 = percentile(totals, 0.99)
    arrivals = [a for r in measured for a in r.arrivals]
    print_table(
        f"1. Bulletin -> nine platforms have it, {len(measured)} rounds after {len(cold)} warm-up",
        [
            ("acceptances recorded / expected", f"{result['receipts']} / {result['expected']}"),
            ("deliveries repeated to a platform", result["duplicates"]),
            *[
                (
                    f"warm-up round {i + 1} (not counted)",
                    f"{r.total * 1e3:,.1f} ms, {r.retries_before} API retries before the 9th accepted",
                )
                for i, r in enumerate(cold)
            ],
            line("issue commit -> ninth acceptance committed", totals),
            ("target", "p99 < 1,000 ms"),
            (
                "rounds with a Prefect API retry (503)",
                f"{sum(1 for r in measured if r.retries_before)} of {len(measured)} before the 9th accepted, "
                f"{sum(1 for r in measured if r.retries_after)} after it",
            ),
            line("  rounds without one", [r.total for r in measured if not r.retries_before]),
            line("  rounds with one", [r.total for r in measured if r.retries_before]),
        ],
    )
    print_table(
        "1b. Where the time goes, from the issuing commit (each row: p50 / p99 / max)",
        [
            line("bulletins.issue + commit (before the clock)", series(lambda r: r.issue_seconds)),
            line("commit -> outbox request claimed", series(lambda r: _minus(r.claimed, r.committed))),
            line("claimed -> Prefect flow run created", series(lambda r: _minus(r.flow_created, r.claimed))),
            line("created -> flow run Running", series(lambda r: _minus(r.flow_started, r.flow_created))),
            line("commit -> flow run Running", series(lambda r: _minus(r.flow_started, r.committed))),
            line(
                "Running -> first task run started",
                series(lambda r: _minus(min(r.task_starts, default=None), r.flow_started)),
            ),
            line(
                "first -> ninth task run started",
                series(lambda r: _minus(max(r.task_starts, default=None), min(r.task_starts, default=None))),
            ),
            line(
                "Running -> first delivery at a platform",
                series(lambda r: _minus(min((a.arrived for a in r.arrivals), default=None), r.flow_started)),
            ),
            line(
                "first -> ninth delivery at the platforms",
                series(
                    lambda r: _minus(
                        max((a.arrived for a in r.arrivals), default=None),
                        min((a.arrived for a in r.arrivals), default=None),
                    )
                ),
            ),
            line("a platform handling one delivery", [a.seconds for a in arrivals]),
            line(
                "ninth delivery arrived -> ninth acceptance committed",
                series(
                    lambda r: _minus(
                        max(r.receipts, default=None), max((a.arrived for a in r.arrivals), default=None)
                    )
                ),
            ),
            line(
                "ninth acceptance -> flow run ended",
                series(lambda r: _minus(r.flow_ended, max(r.receipts, default=None))),
            ),
            line(
                "ninth acceptance -> request finished (hook)",
                series(lambda r: _minus(r.request_finished, max(r.receipts, default=None))),
            ),
            line("flow run Running -> ended", series(lambda r: _minus(r.flow_ended, r.flow_started))),
        ],
    )
    return p99


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


# 2. Sync ------------------------------------------------------------------------------------------


def count_records(since: datetime | None = None) -> int:
    with hub_session() as session:
        query = sa.select(sa.func.count()).select_from(PartnerRecord)
        if since is not None:
            query = query.where(PartnerRecord.synced_at > since)
        return session.scalar(query) or 0


def sync_all(cities: list[str], retries: PrefectRetries) -> dict[str, Any]:
    """Run `sync_partner` for each city in turn; return the time and records of each."""
    from flows.partners import sync_partner

    per_city: list[tuple[str, float, int]] = []
    hit = 0
    cpu = process_cpu()
    started = time.perf_counter()
    for slug in cities:
        t0 = time.perf_counter()
        wall = time.time()
        result = sync_partner(slug)
        per_city.append((slug, time.perf_counter() - t0, sum(result.values())))
        hit += bool(retries.between(wall, time.time()))
    return {
        "seconds": time.perf_counter() - started,
        "cpu": process_cpu() - cpu,
        "per_city": per_city,
        "records": sum(n for _, _, n in per_city),
        "retried": hit,
    }


def fetch_only(sim: PartnerSimulator, token: str) -> tuple[float, int, int]:
    """Fetch and parse every feed of one platform from the start, without the database."""
    client = PartnerClient(sim.url, token)
    pages = items = 0
    started = time.perf_counter()
    try:
        for feed in partners.FEEDS:
            for page in client.iter_changes(feed, None):
                pages += 1
                items += len(page.items)
                for item in page.items:
                    item.model_dump(mode="json")  # what sync_feed does with each item
    finally:
        client.close()
    return time.perf_counter() - started, pages, items


def sync_benchmark(
    app: Flask, split: tuple[int, int, int], retries: PrefectRetries, failures: list[str]
) -> dict[str, Any]:
    """Sync ten platforms in full, with no change, and after 1 % changed; check the counts."""
    with app.app_context():
        cities = [c.slug for c in db.session.scalars(sa.select(City).order_by(City.slug))]
        db.session.remove()
    per_platform = sum(split)
    total = per_platform * len(cities)
    changed_each = round(per_platform * CHANGED_SHARE)
    sims: dict[str, PartnerSimulator] = {}
    try:
        started = time.perf_counter()
        for index, slug in enumerate(cities):
            sims[slug] = PartnerSimulator(slug, token=f"sync-{slug}", seed=100 + index, initial=split).start()
        generate_seconds = time.perf_counter() - started
        with app.app_context():
            for slug, sim in sims.items():
                city = db.session.scalar(sa.select(City).where(City.slug == slug))
                partners.register(
                    db.session, BENCH_ACTOR, city, sim.url, f"sync-{slug}", settings=settings_of(app)
                )
            db.session.commit()
            db.session.remove()

        fetch = fetch_only(sims[cities[0]], f"sync-{cities[0]}")

        full = sync_all(cities, retries)
        after_full = count_records()
        if full["records"] != total or after_full != total:
            failures.append(f"full sync: {full['records']} changed, {after_full} rows, expected {total}")

        idle = sync_all(cities, retries)
        if idle["records"]:
            failures.append(f"sync with nothing changed wrote {idle['records']} records")

        time.sleep(0.01)
        mark = utcnow()
        time.sleep(0.01)
        for sim in sims.values():
            sim.change(changed_each)  # spread over the three feeds at random
        incremental = sync_all(cities, retries)
        after_incremental = count_records()
        moved = count_records(since=mark)
        expected_changed = changed_each * len(cities)
        if incremental["records"] != expected_changed or moved != expected_changed:
            failures.append(
                f"incremental sync: {incremental['records']} changed, {moved} rows moved, "
                f"expected {expected_changed}"
            )
        if after_incremental != total:
            failures.append(f"after the incremental sync {after_incremental} rows, expected {total}")
    finally:
        for sim in sims.values():
            sim.stop()
    return {
        "cities": len(cities),
        "per_platform": per_platform,
        "split": split,
        "total": total,
        "generate_seconds": generate_seconds,
        "fetch": fetch,
        "full": full,
        "after_full": after_full,
        "idle": idle,
        "incremental": incremental,
        "after_incremental": after_incremental,
        "moved": moved,
        "expected_changed": expected_changed,
    }


def report_sync(result: dict[str, Any]) -> float:
    """Print the sync tables; return the ratio incremental / full."""
    full, idle, inc = result["full"], result["idle"], result["incremental"]
    ratio = inc["seconds"] / full["seconds"]
    fetch_seconds, fetch_pages, fetch_items = result["fetch"]

    def per_city(run: dict[str, Any]) -> str:
        times = [t for _, t, _ in run["per_city"]]
        return (
            f"median {statistics.median(times):.2f} s, {min(times):.2f}-{max(times):.2f} s; "
            f"{run['retried']} of {len(times)} hit a Prefect API retry"
        )

    def rate(run: dict[str, Any]) -> str:
        return (
            f"{run['records']:,} in {run['seconds']:.2f} s = {run['records'] / run['seconds']:,.0f} records/s"
        )

    def median(run: dict[str, Any]) -> float:
        return statistics.median(t for _, t, _ in run["per_city"])

    incidents, warnings, resources = result["split"]
    print_table(
        f"2. Sync of {result['cities']} platforms x {result['per_platform']:,} records, one after another",
        [
            (
                "records per platform",
                f"incidents {incidents:,}, warnings {warnings:,}, resources {resources:,}",
            ),
            ("simulators generated in", f"{result['generate_seconds']:.1f} s"),
            ("full: records / time", rate(full)),
            ("full: per city", per_city(full)),
            (
                "full: bench process CPU",
                f"{full['cpu']:.1f} s ({full['cpu'] / full['seconds']:.0%} of one core)",
            ),
            ("partner_records after full", f"{result['after_full']:,} (must be {result['total']:,})"),
            ("no change: time (fixed cost)", f"{idle['seconds']:.2f} s ({per_city(idle)})"),
            ("1 % changed: records / time", rate(inc)),
            ("1 % changed: per city", per_city(inc)),
            (
                "1 % changed less no change, city medians",
                f"{(median(inc) - median(idle)) * 1e3:,.0f} ms a city for {result['expected_changed'] // 10} "
                f"records (full: {median(full) * 1e3 / result['per_platform']:.2f} ms a record)",
            ),
            ("ratio incremental / full, totals", f"{ratio:.1%} (1 % of the records changed)"),
            ("ratio incremental / full, city medians", f"{median(inc) / median(full):.1%}"),
            (
                "partner_records after / synced_at moved",
                f"{result['after_incremental']:,} / {result['moved']:,} (must be {result['total']:,} / "
                f"{result['expected_changed']:,})",
            ),
            (
                "one platform fetched + parsed, no database",
                f"{fetch_items:,} records, {fetch_pages} pages in {fetch_seconds:.2f} s "
                f"({fetch_items / fetch_seconds:,.0f} records/s)",
            ),
        ],
    )
    result["medians"] = (median(full), median(idle), median(inc))
    return ratio


# Main ---------------------------------------------------------------------------------------------


def quiet_logging() -> None:
    """Show warnings and errors only (Prefect logs every flow and task run at INFO)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    # The migration's logging set-up (alembic's fileConfig) disables the loggers that exist then.
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.disabled = False
    # Prefect sets its run loggers to INFO (and ships those records to its API, as in the hub);
    # only the console handler here is raised to WARNING.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)


def drain_prefect() -> None:
    """Send the logs and events Prefect still holds before its server goes away."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 bulletin rounds instead of 30")
    parser.add_argument("--runs", type=int, help="bulletin rounds measured (default 30; quick 10)")
    args = parser.parse_args(argv)
    runs = args.runs or (10 if args.quick else 30)
    failures: list[str] = []
    print_table(
        f"Exchange benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        [
            *machine(mqtt=False, prefect=True),
            ("bulletin rounds", f"{runs} (+{WARMUP} warm-up)"),
            ("sync", f"10 platforms x {sum(SYNC_SPLIT):,} records"),
        ],
    )
    with tempfile.TemporaryDirectory(prefix="bench-exchange-") as tmp:
        started = time.perf_counter()
        server = start_prefect_server(Path(tmp) / "prefect")
        server_seconds = time.perf_counter() - started
        try:
            app = make_hub_app(Path(tmp) / "instance")
            from flows.prefect_settings import disable_flow_heartbeats

            disable_flow_heartbeats()  # as the hub does (web.runner)
            # Prefect configures its logging when its flow machinery is first imported; do that
            # before quieting the console and counting the client's retries.
            importlib.import_module("flows.registry").flows()
            quiet_logging()
            retries = PrefectRetries()
            retries.install()
            use_app(app)
            print_table(
                "Set-up",
                [
                    (
                        "Prefect server (ManagedPrefectServer)",
                        f"{server.api_url}, healthy after {server_seconds:.1f} s",
                    ),
                    ("hub database", f"SQLite (WAL) in {tmp}"),
                ],
            )
            server_cpu = process_cpu(server.pid) if server.pid else float("nan")
            cpu = process_cpu()
            t0 = time.perf_counter()
            bulletin = bulletin_benchmark(app, runs, WARMUP, retries, failures)
            seconds = time.perf_counter() - t0
            p99 = report_bulletins(bulletin)
            print_table(
                "1c. CPU over the bulletin step",
                [
                    ("wall time", f"{seconds:.1f} s"),
                    (
                        "bench process (hub + simulators)",
                        f"{(process_cpu() - cpu) / seconds:.0%} of one core",
                    ),
                    (
                        "Prefect server process",
                        f"{(process_cpu(server.pid) - server_cpu) / seconds:.0%} of one core"
                        if server.pid
                        else "-",
                    ),
                ],
            )
            sync = sync_benchmark(current_app(), SYNC_SPLIT, retries, failures)
            ratio = report_sync(sync)
            drain_prefect()
        finally:
            use_app(None)
            server.stop()

    verdict = [
        ("all nine platforms within 1 s at p99", "met" if p99 < 1.0 else f"missed (p99 {p99 * 1e3:,.0f} ms)"),
        (
            "incremental sync follows the changed records",
            f"incremental / full = {ratio:.1%} of the time for 1 % of the records; a city's median "
            f"{sync['medians'][2] * 1e3:,.0f} ms, of which {sync['medians'][1] * 1e3:,.0f} ms fixed",
        ),
        (
            "no delivery lost or doubled, no signature made up, records exact",
            "met" if not failures else "FAILED",
        ),
    ]
    print_table("Targets", verdict)
    for failure in failures:
        print(f"FAILURE: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
