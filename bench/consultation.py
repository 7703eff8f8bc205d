"""Benchmark: a consultation's invitations to the ten cities' desks and platforms; the calendar feed.

Run from the repository root: `.venv/bin/python bench/consultation.py [--quick]`. It starts the
hub's managed Prefect server in a temporary PREFECT_HOME, a fresh SQLite database (WAL) migrated
with the project's migrations and seeded with the ten cities, and ten partner simulators
(`connectors.sims.partner`) over real sockets, one per city, registered with `partners.register`.

1. Invitations. Each round Linyi's coordinator calls a consultation inviting the nine other cities
   (`consultations.call`, committed as the web layer does), then the hub's
   `FlowDispatcher(LocalLauncher())` is woken (what `kick_flows` does); it runs
   `deliver-invitations`, whose one task delivers each invitation, with its iTIP REQUEST, to its
   city's platform on a thread of its own. The call's transaction itself puts the invitations on
   the desks (`delivered_at`), so the desk is timed from the start of the call to its commit, and
   each platform from the commit to the invitation's arrival at the simulator; a round counts once
   all ten platforms hold their invitation.
2. Calendar. Five years of meetings (the semi-annual conference and two consultations a month, ten
   cities invited to each, with their answers) and their action items are written to the
   database; the region's feed and one city's feed are rendered with `calendar_feed` as the API
   does, 30 times each after two warm-ups, and parsed with `icalendar` to check their counts.

Prints tables; exits 1 only on a real failure (an invitation lost or delivered twice, a feed that
does not parse or misses an event), never on a slow figure.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from _common import BENCH_ACTOR, machine, make_hub_app, percentile, print_table, start_prefect_server
from exchange import drain_prefect, quiet_logging
from flask import Flask
from icalendar import Calendar

from connectors.sims.partner import PartnerSimulator
from contracts.consultations import ConsultationCall
from flows.context import use_app
from hub.action_items.models import ActionItem
from hub.app import settings_of
from hub.consultations import services as consultations
from hub.consultations.models import Invitation, Meeting
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role
from hub.partners import services as partners

ORGANIZER = "linyi"
WARMUP = 2
ROUND_TIMEOUT = 60.0
TARGET_INVITATIONS_P99 = 2.0
TARGET_FEED = 0.100
FEED_REPEATS = 30
YEARS = 5
CONSULTATIONS_PER_MONTH = 2


def invitation_rounds(
    app: Flask, runs: int, failures: list[str]
) -> tuple[list[float], list[float], list[float]]:
    """Call `WARMUP + runs` consultations one after another; return desk, platform and all-ten seconds."""
    from flows.launcher import FlowDispatcher, LocalLauncher

    with app.app_context():
        all_cities = list(db.session.scalars(sa.select(City).order_by(City.slug)))
        organizer = next(c for c in all_cities if c.slug == ORGANIZER)
        actor = Actor("partner", "token:bench", organizer.id, Role.COORDINATOR)
        invited = tuple(c.slug for c in all_cities if c.slug != ORGANIZER)
        sims = {
            c.slug: PartnerSimulator(c.slug, token=f"token-{c.slug}", seed=3, initial=(0, 0, 0)).start()
            for c in all_cities
        }
        for city in all_cities:
            partners.register(
                db.session,
                BENCH_ACTOR,
                city,
                sims[city.slug].url,
                f"token-{city.slug}",
                settings=settings_of(app),
            )
        db.session.commit()
        db.session.remove()

    dispatcher = FlowDispatcher(LocalLauncher())  # the hub's settings
    desk: list[float] = []
    platform: list[float] = []
    all_ten: list[float] = []
    try:
        dispatcher.start(recover=True)
        for index in range(WARMUP + runs):
            with app.app_context():
                started = datetime.now(UTC)
                meeting = consultations.call(
                    db.session,
                    actor,
                    ConsultationCall(
                        title=f"基准会商 {index}",
                        starts_at=datetime.now(UTC) + timedelta(hours=1),
                        invited_cities=invited,
                        video_link="https://video.example.cn/room/bench",
                    ),
                )
                db.session.commit()
                called = datetime.now(UTC)
                meeting_id, public_id = meeting.id, meeting.public_id
                db.session.remove()
            dispatcher.wake()
            deadline = time.monotonic() + ROUND_TIMEOUT
            arrivals: dict[str, datetime] = {}
            while time.monotonic() < deadline and len(arrivals) < len(sims):
                for slug, sim in sims.items():
                    for delivery in sim.meeting_invitations():
                        if delivery.meeting_id == public_id:
                            arrivals[slug] = sim.invitation_arrivals[(delivery.id, delivery.sequence)]
                time.sleep(0.01)
            if len(arrivals) < len(sims):
                failures.append(f"meeting {public_id}: {len(arrivals)} of {len(sims)} platforms within 60 s")
                continue
            with app.app_context():
                stamps = db.session.scalars(
                    sa.select(Invitation.delivered_at).where(Invitation.meeting_id == meeting_id)
                ).all()
                db.session.remove()
            if len(stamps) != len(sims) or any(s is None or s > called for s in stamps):
                failures.append(f"meeting {public_id}: not on every desk with the call's commit")
                continue
            if index < WARMUP:
                continue
            # The desks read the rows the call committed: an invitation is on them from the commit.
            desk.append((called - started).total_seconds())
            platform.extend((at - called).total_seconds() for at in arrivals.values())
            all_ten.append(max((at - called).total_seconds() for at in arrivals.values()))
    finally:
        dispatcher.stop()
        for sim in sims.values():
            sim.stop()
    for slug, sim in sims.items():
        if sim.stats.meeting_invitation_duplicates:
            failures.append(f"{slug}: {sim.stats.meeting_invitation_duplicates} invitations delivered twice")
        if sim.stats.meeting_invitations != WARMUP + runs:
            failures.append(
                f"{slug}: {sim.stats.meeting_invitations} invitations for {WARMUP + runs} meetings"
            )
    return desk, platform, all_ten


def five_years(app: Flask) -> tuple[int, int]:
    """Write five years of meetings with ten invitations and answers each, and their action items."""
    with app.app_context():
        all_cities = list(db.session.scalars(sa.select(City).order_by(City.id)))
        start = datetime(2027, 1, 4, 1, 0, tzinfo=UTC)
        meetings = 0
        for month in range(YEARS * 12):
            kinds = ["consultation"] * CONSULTATIONS_PER_MONTH + (["conference"] if month % 6 == 0 else [])
            for n, kind in enumerate(kinds):
                at = start + timedelta(days=30 * month + 9 * n)
                chair = all_cities[(month + n) % len(all_cities)]
                meeting = Meeting(
                    public_id=uuid.uuid4(),
                    kind=kind,
                    status=consultations.CANCELLED if n == 1 and month % 5 == 0 else consultations.CALLED,
                    title=f"{'联席会议' if kind == 'conference' else '会商'} {month}-{n}",
                    starts_at=at,
                    ends_at=at + timedelta(hours=2),
                    location="视频会商",
                    video_link="https://video.example.cn/room/1",
                    organizer_city_id=chair.id,
                    chair_city_id=chair.id,
                    quorum={"numerator": 1, "denominator": 2, "strictly_more": True},
                    expert_specialities=[],
                    sequence=month % 3,
                    updated_at=at - timedelta(days=1),
                )
                db.session.add(meeting)
                for i, city in enumerate(all_cities):
                    db.session.add(
                        Invitation(
                            meeting=meeting,
                            city_id=city.id,
                            reason="member",
                            note="",
                            answer=("accept", "decline", "delegate", None)[i % 4],
                            delegate_name="张伟" if i % 4 == 2 else None,
                        )
                    )
                if kind == "conference":
                    db.session.flush()
                    for i in range(5):
                        owner = all_cities[(month + i) % len(all_cities)]
                        db.session.add(
                            ActionItem(
                                origin="resolution",
                                origin_id=meeting.id,
                                context_id=meeting.public_id,
                                owner_city_id=owner.id,
                                chair_city_id=chair.id,
                                title=f"督办事项 {month}-{i}",
                                due_on=(at + timedelta(days=30 * (i + 1))).date(),
                                state="open" if i % 2 else "closed",
                                closed_at=at + timedelta(days=20) if i % 2 == 0 else None,
                                evidence={"note": "已办结"} if i % 2 == 0 else None,
                            )
                        )
                meetings += 1
        db.session.commit()
        items = db.session.scalar(sa.select(sa.func.count()).select_from(ActionItem)) or 0
        db.session.remove()
    return meetings, items


def time_feed(app: Flask, city: str | None) -> tuple[list[float], bytes]:
    """Render a feed as the API does, WARMUP + FEED_REPEATS times; return the timed seconds and the last."""
    seconds: list[float] = []
    body = b""
    with app.app_context():
        found = db.session.scalar(sa.select(City).where(City.slug == city)) if city else None
        for index in range(WARMUP + FEED_REPEATS):
            db.session.expire_all()
            started = time.perf_counter()
            body = consultations.calendar_feed(db.session, found)
            elapsed = time.perf_counter() - started
            if index >= WARMUP:
                seconds.append(elapsed)
        db.session.remove()
    return seconds, body


def _ms(values: Sequence[float], fraction: float) -> str:
    return f"{percentile(values, fraction) * 1e3:,.0f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 consultations instead of 30")
    args = parser.parse_args(argv)
    runs = 10 if args.quick else 30
    failures: list[str] = []
    print_table(
        f"Consultation benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        [
            *machine(mqtt=False, prefect=True),
            ("consultations called", f"{runs} (+{WARMUP} warm-up), ten cities invited to each"),
            (
                "calendar",
                f"{YEARS} years, {CONSULTATIONS_PER_MONTH} consultations a month + semi-annual conference",
            ),
        ],
    )
    with tempfile.TemporaryDirectory(prefix="bench-consultation-") as tmp:
        server = start_prefect_server(Path(tmp) / "prefect")
        try:
            app = make_hub_app(Path(tmp) / "instance")
            from flows.prefect_settings import disable_flow_heartbeats

            disable_flow_heartbeats()  # as the hub does (web.runner)
            importlib.import_module("flows.registry").flows()
            quiet_logging()
            use_app(app)
            desk, platform, all_ten = invitation_rounds(app, runs, failures)
            if all_ten:
                print_table(
                    "1. Invitations: from the call's commit",
                    [
                        (
                            "on the ten desks (call to commit), p50 / p99",
                            f"{_ms(desk, 0.5)} / {_ms(desk, 0.99)}",
                        ),
                        (
                            "at the ten platforms, each, p50 / p99",
                            f"{_ms(platform, 0.5)} / {_ms(platform, 0.99)}",
                        ),
                        (
                            "all ten platforms reached, p50 / p99 / max",
                            f"{_ms(all_ten, 0.5)} / {_ms(all_ten, 0.99)} / {max(all_ten) * 1e3:,.0f} ms",
                        ),
                    ],
                )
            meetings, items = five_years(app)
            with app.app_context():
                # The feed also holds the consultations called in step 1.
                in_feed = db.session.scalar(sa.select(sa.func.count()).select_from(Meeting)) or 0
                db.session.remove()
            feeds = []
            for city in (None, "xuzhou"):
                seconds, body = time_feed(app, city)
                cal = Calendar.from_ical(body)
                events, todos = len(cal.walk("VEVENT")), len(cal.walk("VTODO"))
                if city is None and events != in_feed:
                    failures.append(f"the region's feed has {events} events for {in_feed} meetings")
                feeds.append((city or "region", seconds, len(body), events, todos))
            print_table(
                f"2. Calendar feed: {meetings} meetings in {YEARS} years (+ step 1), {items} action items",
                [
                    (
                        f"{name}: {events} VEVENT, {todos} VTODO, {size / 1024:,.0f} KiB",
                        f"median {statistics.median(seconds) * 1e3:,.0f} ms, p99 {_ms(seconds, 0.99)}",
                    )
                    for name, seconds, size, events, todos in feeds
                ],
            )
            drain_prefect()
        finally:
            use_app(None)
            server.stop()
    verdict = []
    if all_ten:
        p99 = percentile(all_ten, 0.99)
        verdict.append(
            (
                "all ten platforms within 2 s at p99",
                "met" if p99 <= TARGET_INVITATIONS_P99 else f"missed ({p99:.2f} s)",
            )
        )
        verdict.append(
            ("all ten platforms within 60 s of the call", "met" if max(all_ten) <= 60 else "missed")
        )
    for name, seconds, *_ in feeds:
        median = statistics.median(seconds)
        verdict.append(
            (
                f"{name} feed within 100 ms",
                "met" if median <= TARGET_FEED else f"missed ({median * 1e3:,.0f} ms)",
            )
        )
    print_table("Targets (median for the feed)", verdict)
    for failure in failures:
        print(f"FAILURE: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
