"""Verification requests, daily reports and the partner feed upsert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from hub.extensions import db
from hub.partners import services as partners
from hub.partners.models import FeedState, PartnerRecord


def test_feed_page_applied_twice_changes_nothing(city) -> None:
    linyi = city("linyi")
    started = datetime.now(UTC)
    at = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
    items = [partners.FeedItem(f"R{n}", at, {"name": f"冲锋舟{n}"}) for n in range(5)]
    assert partners.apply_page(db.session, linyi.id, "resources", items, "c5", run_started=started) == 5
    db.session.commit()
    assert partners.apply_page(db.session, linyi.id, "resources", items, "c5", run_started=started) == 0
    newer = [partners.FeedItem("R1", at + timedelta(seconds=1), {"name": "冲锋舟1（检修）"})]
    assert partners.apply_page(db.session, linyi.id, "resources", newer, "c6", run_started=started) == 1
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(PartnerRecord)) == 5
    state = db.session.scalars(select(FeedState)).one()
    assert (state.cursor, state.last_run_records) == ("c6", 6)
