"""Exchange flows over real sockets with the project's partner simulators, through Prefect's harness."""

from __future__ import annotations

import http.server
import threading
from datetime import UTC, datetime, timedelta

import pytest
from flask import current_app
from sqlalchemy import func, select

from contracts.bulletins import BulletinCreate, ReceiptCreate
from contracts.verifications import VerificationCreate
from flows.bulletins import distribute_bulletin, forward_receipts_flow
from flows.launcher import FlowDispatcher, LocalLauncher
from flows.partners import sync_partner, sync_partners
from flows.scheduler import Scheduler
from flows.verifications import deliver_verification_request
from hub.app import settings_of
from hub.bulletins import services as bulletins
from hub.bulletins.models import BulletinRecipient
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import DeadLetter, FlowRequest, FlowRequestStatus, Role
from hub.partners import services as partners
from hub.partners.models import PartnerRecord
from hub.verifications import services as verifications
from tests.flows.test_mqtt_bridge import wait_for

pytestmark = pytest.mark.usefixtures("prefect_harness")
ADMIN = Actor("system", "tests", None, Role.ADMIN)


def _count(model: type, *where: object) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_sync_is_incremental_and_a_rerun_changes_nothing(platforms, city) -> None:
    simulator = platforms("linyi", initial=(120, 15, 60))
    assert sync_partner("linyi") == {"incidents": 120, "warnings": 15, "resources": 60}
    assert _count(PartnerRecord) == 195
    assert sync_partner("linyi") == {"incidents": 0, "warnings": 0, "resources": 0}
    simulator.change(7, "resources")
    assert sync_partner("linyi") == {"incidents": 0, "warnings": 0, "resources": 7}
    assert _count(PartnerRecord) == 195
    health = next(h for h in partners.health(db.session) if h.city.slug == "linyi")
    assert health.last_success is not None and health.last_error is None
    assert health.records_last_run == 7


def test_cities_due_together_sync_in_one_run_and_one_down_fails_no_other(platforms, city) -> None:
    platforms("linyi", initial=(12, 3, 6))
    platforms("xuzhou", initial=(5, 1, 2))
    platforms("heze", initial=(1, 1, 1)).away()
    settings = settings_of(current_app)
    now = datetime(2026, 11, 30, 4, 0, 30, tzinfo=UTC)
    partners.schedule_syncs(db.session, now, settings)
    partners.schedule_syncs(db.session, now + timedelta(seconds=5), settings)  # same slot, other tick
    db.session.commit()
    requests = db.session.scalars(select(FlowRequest).where(FlowRequest.flow_name == partners.SYNC_DUE)).all()
    assert len(requests) == 1
    assert requests[0].parameters == {"cities": ["heze", "linyi", "xuzhou"]}

    outcome = sync_partners(["heze", "linyi", "xuzhou"])
    assert outcome["linyi"] == {"incidents": 12, "warnings": 3, "resources": 6}
    assert outcome["xuzhou"] == {"incidents": 5, "warnings": 1, "resources": 2}
    assert all(str(value).startswith("failed:") for value in outcome["heze"].values())
    health = {h.city.slug: h for h in partners.health(db.session)}
    assert health["heze"].last_error and health["linyi"].last_error is None


class _Garbage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"items": [{"id": 5}], "next_cursor": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_malformed_feed_becomes_a_dead_letter_and_shows_in_health(flow_app, city) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        partners.register(db.session, ADMIN, city("heze"), url, "t", settings=settings_of(flow_app))
        db.session.commit()
        sync_partner("heze")
    finally:
        server.shutdown()
        server.server_close()
    letters = db.session.scalars(select(DeadLetter)).all()
    assert len(letters) == 3 and all(d.source == "partner" for d in letters)
    assert {d.city_id for d in letters} == {city("heze").id}  # the page and API show them to Heze
    assert b'"id": 5' in letters[0].payload
    health = next(h for h in partners.health(db.session) if h.city.slug == "heze")
    assert health.last_error and "invalid" in health.last_error.lower()
    assert _count(PartnerRecord) == 0


def _issue(make_user, addressed: list[str]) -> int:
    data = BulletinCreate.model_validate(
        {
            "kind": "warning",
            "colour": "orange",
            "category": "natural_disaster",
            "area": "沂河流域",
            "title": "沂河洪水橙色预警",
            "text": "预计沂河临沂段超警戒。",
            "addressed_cities": addressed,
            "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
        }
    )
    bulletin = bulletins.issue(db.session, Actor.for_user(make_user("ly", "linyi")), data)
    db.session.commit()
    return bulletin.id


def test_distribution_reaches_every_platform_and_only_people_sign(platforms, make_user) -> None:
    sims = {slug: platforms(slug, receipt_mode="immediate") for slug in ("xuzhou", "jining", "zaozhuang")}
    issuer = platforms("linyi")
    bulletin_id = _issue(make_user, [*sims, "heze"])  # Heze has no platform: it reads in the hub
    outcome = distribute_bulletin(bulletin_id)
    assert outcome == {"delivered": 3, "hub": 1}
    assert distribute_bulletin(bulletin_id) == {}
    assert all(s.stats.bulletins == 1 and s.stats.bulletin_duplicates == 0 for s in sims.values())
    # The platforms answered at once, even with a receipt: that is delivery (平台已接收), never a
    # person's signature, so nothing is signed and nothing reaches the issuer's platform yet.
    assert _count(BulletinRecipient, BulletinRecipient.delivered_at.is_not(None)) == 4
    assert _count(BulletinRecipient, BulletinRecipient.receipt_at.is_not(None)) == 0
    assert issuer.stats.receipts == 0
    # A person on Xuzhou's desk signs; the issuing city's own platform hears of it, once.
    bulletin = bulletins.get_by_id(db.session, bulletin_id)
    bulletins.record_receipt(
        db.session,
        Actor.for_user(make_user("xz", "xuzhou")),
        bulletin.public_id,
        ReceiptCreate(acknowledged_by="徐州值班员张伟"),
    )
    db.session.commit()
    assert forward_receipts_flow([bulletin_id]) == 1
    assert forward_receipts_flow([bulletin_id]) == 0
    assert (issuer.stats.receipts, issuer.stats.receipt_duplicates) == (1, 0)
    assert [r.acknowledged_by for r in issuer.receipts()] == ["徐州值班员张伟"]


def test_receipts_to_forward_are_one_run_a_slot_and_one_issuer_down_fails_no_other(
    platforms, make_user, settings
) -> None:
    linyi, xuzhou = platforms("linyi"), platforms("xuzhou")
    issued = []
    for issuer in ("linyi", "xuzhou"):
        data = BulletinCreate.model_validate(
            {
                "category": "natural_disaster",
                "area": "沂沭河流域",
                "title": f"{issuer} 关于强降雨的通报",
                "text": "请做好防范。",
                "addressed_cities": ["heze"],  # Heze has no platform: a person signs in the hub
                "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
            }
        )
        issued.append(bulletins.issue(db.session, Actor.for_user(make_user(f"{issuer}-1", issuer)), data))
    db.session.commit()
    heze = Actor.for_user(make_user("hz", "heze"))
    for bulletin in issued:
        bulletins.record_receipt(
            db.session, heze, bulletin.public_id, ReceiptCreate(acknowledged_by="菏泽值班员")
        )
    db.session.commit()
    bulletins.schedule_deliveries(db.session, datetime.now(UTC), settings)
    db.session.commit()
    forwards = [r for r in db.session.scalars(select(FlowRequest)) if r.flow_name == bulletins.FORWARD]
    assert len(forwards) == 1 and sorted(forwards[0].parameters["bulletin_ids"]) == sorted(
        b.id for b in issued
    )
    xuzhou.away()
    assert (
        forward_receipts_flow(forwards[0].parameters["bulletin_ids"]) == 1
    )  # Linyi's, after Xuzhou's retries
    assert (linyi.stats.receipts, xuzhou.stats.receipts) == (1, 0)
    xuzhou.back()
    assert (
        forward_receipts_flow(forwards[0].parameters["bulletin_ids"]) == 1
    )  # Xuzhou's, and Linyi's not again
    assert (linyi.stats.receipts, xuzhou.stats.receipts) == (1, 1)
    assert linyi.stats.receipt_duplicates == xuzhou.stats.receipt_duplicates == 0


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_platform_down_then_back_gets_the_bulletin_once(platforms, make_user) -> None:
    xuzhou, jining = platforms("xuzhou"), platforms("jining")
    jining.away()
    bulletin_id = _issue(make_user, ["xuzhou", "jining"])
    dispatcher = FlowDispatcher(LocalLauncher(workers=2), poll_seconds=0.2)
    settings = settings_of(current_app).with_overrides(redeliver_seconds=2)
    scheduler = Scheduler(settings, wake=dispatcher, tick_seconds=0.5)
    dispatcher.start()
    scheduler.start()
    try:
        wait_for(
            lambda: _count(BulletinRecipient, BulletinRecipient.delivered_at.is_not(None)) == 1,
            what="Xuzhou's platform took it",
        )
        assert _count(BulletinRecipient, BulletinRecipient.delivered_at.is_(None)) == 1
        jining.back()
        wait_for(
            lambda: _count(BulletinRecipient, BulletinRecipient.delivered_at.is_not(None)) == 2,
            timeout=60,
            what="Jining's platform took it after it came back",
        )
    finally:
        scheduler.stop()
        dispatcher.stop()
    assert (xuzhou.stats.bulletins, jining.stats.bulletins) == (1, 1)
    recipient = db.session.scalars(
        select(BulletinRecipient).where(
            BulletinRecipient.bulletin_id == bulletin_id, BulletinRecipient.delivered_at.is_not(None)
        )
    ).all()
    assert len(recipient) == 2


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_hub_killed_mid_distribution_finishes_without_resending(platforms, make_user) -> None:
    xuzhou, jining = platforms("xuzhou"), platforms("jining")
    bulletin_id = _issue(make_user, ["xuzhou", "jining"])
    # The hub had delivered to Xuzhou when it was killed.
    request = db.session.scalars(select(FlowRequest)).one()
    request.status = FlowRequestStatus.STARTED
    xuzhou_row = db.session.scalars(
        select(BulletinRecipient).where(
            BulletinRecipient.bulletin_id == bulletin_id, BulletinRecipient.city.has(slug="xuzhou")
        )
    ).one()
    bulletins.record_delivery(db.session, xuzhou_row.id, platform_ref="XZ-1")
    db.session.commit()
    dispatcher = FlowDispatcher(LocalLauncher(workers=1), poll_seconds=0.2)
    dispatcher.start(recover=True)
    try:
        wait_for(
            lambda: _count(BulletinRecipient, BulletinRecipient.delivered_at.is_not(None)) == 2,
            what="the distribution finished after the restart",
        )
    finally:
        dispatcher.stop()
    assert (xuzhou.stats.bulletins, jining.stats.bulletins) == (0, 1)


def test_verification_request_is_delivered_to_the_asked_platform(platforms, make_user) -> None:
    xuzhou = platforms("xuzhou")
    request = verifications.create(
        db.session,
        Actor.for_user(make_user("ly", "linyi")),
        VerificationCreate(
            to_city="xuzhou",
            subject="核实邳州段险情",
            question="请核实邳州段堤防是否管涌。",
            deadline=datetime.now(UTC) + timedelta(hours=1),
        ),
    )
    db.session.commit()
    assert deliver_verification_request(request.id) == "delivered"
    assert deliver_verification_request(request.id) == "already"
    assert xuzhou.stats.verification_requests == 1
