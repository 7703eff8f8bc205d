"""Partner platforms: their registry, the incremental upsert of their feeds, and sync health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from hub.kernel import audit, crypto, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, NotFound
from hub.kernel.models import City
from hub.kernel.types import DbSession, utcnow
from hub.partners.models import FeedState, PartnerPlatform, PartnerRecord

if TYPE_CHECKING:
    from hub.config import Settings

FEEDS = ("incidents", "warnings", "resources")
SYNC = "sync-partner"  # one city, on demand ("sync now")
SYNC_DUE = "sync-partners"  # every city due in a slot, in one run


@dataclass(frozen=True)
class FeedItem:
    """One item of a partner feed, reduced to what the hub needs to upsert it."""

    external_id: str
    updated_at: datetime
    data: dict[str, object]


def register(
    session: DbSession,
    actor: Actor,
    city: City,
    base_url: str,
    token: str,
    *,
    settings: Settings,
    interval_seconds: int = 60,
) -> PartnerPlatform:
    """Register (or update) a city's platform; administrators only. The token is stored encrypted."""
    if not actor.is_admin and actor.kind != "system":
        raise Forbidden("only a hub administrator registers partner platforms")
    platform = session.scalar(select(PartnerPlatform).where(PartnerPlatform.city_id == city.id))
    if platform is None:
        platform = PartnerPlatform(city=city)
        session.add(platform)
    platform.base_url = base_url.rstrip("/")
    platform.outbound_token_encrypted = crypto.cipher(settings).encrypt(token)
    platform.enabled = True
    platform.sync_interval_seconds = interval_seconds
    session.flush()
    audit.record(
        session,
        actor,
        "partner.registered",
        "partner_platform",
        platform.id,
        after={"city": city.slug, "base_url": platform.base_url},
        city_id=city.id,
    )
    return platform


def outbound_token(platform: PartnerPlatform, settings: Settings) -> str:
    """Return the token the hub presents to a platform, decrypted."""
    return crypto.cipher(settings).decrypt(platform.outbound_token_encrypted)


def rotate_tokens(session: DbSession, actor: Actor, settings: Settings) -> int:
    """Re-encrypt every stored partner token with the first key of HUB_ENCRYPTION_KEY.

    Every platform is read before any is written, so a token no key opens fails the whole run
    and changes nothing. Returns how many tokens were re-encrypted.
    """
    if not actor.is_admin and actor.kind != "system":
        raise Forbidden("only a hub administrator rotates the partner tokens' key")
    cipher = crypto.cipher(settings)
    every = list(session.scalars(select(PartnerPlatform).order_by(PartnerPlatform.id)))
    rotated = [(platform, cipher.rotate(platform.outbound_token_encrypted)) for platform in every]
    for platform, value in rotated:
        platform.outbound_token_encrypted = value
    session.flush()
    audit.record(
        session, actor, "partner.tokens_rotated", "partner_platform", None, after={"count": len(rotated)}
    )
    return len(rotated)


def platform_for(session: DbSession, city_slug: str) -> PartnerPlatform:
    """Return a city's enabled platform, or fail."""
    platform = session.scalar(
        select(PartnerPlatform).join(City).where(City.slug == city_slug, PartnerPlatform.enabled.is_(True))
    )
    if platform is None:
        raise NotFound(f"no partner platform for {city_slug!r}")
    return platform


def platforms(session: DbSession) -> list[PartnerPlatform]:
    """Return every enabled platform."""
    return list(
        session.scalars(
            select(PartnerPlatform).where(PartnerPlatform.enabled.is_(True)).order_by(PartnerPlatform.city_id)
        )
    )


def feed_state(session: DbSession, city_id: int, feed: str) -> FeedState:
    """Return (creating if needed) the sync state of one feed."""
    state = session.scalar(select(FeedState).where(FeedState.city_id == city_id, FeedState.feed == feed))
    if state is None:
        state = FeedState(city_id=city_id, feed=feed, last_run_records=0)
        session.add(state)
        session.flush()
    return state


def apply_page(
    session: DbSession,
    city_id: int,
    feed: str,
    items: list[FeedItem],
    next_cursor: str,
    *,
    run_started: datetime,
) -> int:
    """Upsert a page of items and move the cursor, in the caller's one transaction.

    An item is written only when it is newer than what the hub holds, so a page fetched twice
    (a retried task, an overlapping cursor) changes nothing. Returns how many rows changed.
    """
    state = feed_state(session, city_id, feed)
    existing = {
        r.external_id: r
        for r in session.scalars(
            select(PartnerRecord).where(
                PartnerRecord.city_id == city_id,
                PartnerRecord.feed == feed,
                PartnerRecord.external_id.in_([i.external_id for i in items]),
            )
        )
    }
    changed = 0
    now = utcnow()
    for item in items:
        record = existing.get(item.external_id)
        if record is None:
            record = PartnerRecord(
                city_id=city_id,
                feed=feed,
                external_id=item.external_id,
                updated_at=item.updated_at,
                data=item.data,
                synced_at=now,
            )
            session.add(record)
            existing[item.external_id] = record
            changed += 1
        elif item.updated_at > record.updated_at:
            record.updated_at, record.data, record.synced_at = item.updated_at, item.data, now
            changed += 1
        if state.newest_item_at is None or item.updated_at > state.newest_item_at:
            state.newest_item_at = item.updated_at
    state.cursor = next_cursor
    # Counted per run: a run that starts resets the count (see begin_run).
    state.last_run_records += changed
    state.last_attempt_at = run_started
    return changed


def begin_run(session: DbSession, city_id: int, feed: str, started: datetime) -> str | None:
    """Start a sync run of a feed: reset its per-run count and return the cursor to resume from."""
    state = feed_state(session, city_id, feed)
    state.last_run_records = 0
    state.last_attempt_at = started
    return state.cursor


def finish_run(session: DbSession, city_id: int, feed: str, *, error: str | None = None) -> None:
    """Record how a sync run of a feed ended."""
    state = feed_state(session, city_id, feed)
    now = utcnow()
    if error is None:
        state.last_success_at = now
        state.last_error = None
    else:
        state.last_error, state.last_error_at = error[:2000], now


@dataclass(frozen=True)
class Health:
    """How one city's feeds are doing, for the sync health page and API."""

    city: City
    platform: PartnerPlatform | None
    feeds: dict[str, FeedState | None]

    @property
    def last_success(self) -> datetime | None:
        times = [s.last_success_at for s in self.feeds.values() if s and s.last_success_at]
        return min(times) if len(times) == len(FEEDS) else None

    @property
    def last_error(self) -> str | None:
        errors = [(s.last_error_at, s.last_error) for s in self.feeds.values() if s and s.last_error]
        return max(errors)[1] if errors else None

    @property
    def records_last_run(self) -> int:
        return sum(s.last_run_records for s in self.feeds.values() if s)

    def lag_seconds(self, now: datetime) -> float | None:
        """Return how long ago the oldest feed last synced successfully."""
        success = self.last_success
        return (now - success).total_seconds() if success else None


def health(session: DbSession) -> list[Health]:
    """Return the sync health of every city."""
    states: dict[tuple[int, str], FeedState] = {
        (s.city_id, s.feed): s for s in session.scalars(select(FeedState))
    }
    by_city = {p.city_id: p for p in session.scalars(select(PartnerPlatform))}
    return [
        Health(city, by_city.get(city.id), {feed: states.get((city.id, feed)) for feed in FEEDS})
        for city in session.scalars(select(City).order_by(City.id))
    ]


def request_sync(session: DbSession, city_slug: str, slot: str) -> None:
    """Ask for a sync of one city's platform; one request per (city, slot) however often asked."""
    flow_requests.enqueue(session, SYNC, key=f"{SYNC}:{city_slug}:{slot}", parameters={"city": city_slug})


def records(session: DbSession, city_id: int, feed: str, limit: int = 200) -> list[PartnerRecord]:
    """Return a city's synced records of one feed, newest first."""
    query = select(PartnerRecord).where(PartnerRecord.city_id == city_id, PartnerRecord.feed == feed)
    return list(session.scalars(query.order_by(PartnerRecord.updated_at.desc()).limit(limit)))


def open_platform_incidents(session: DbSession, limit: int = 500) -> list[PartnerRecord]:
    """Return the incidents the cities' platforms list as not closed, newest first (for the map)."""
    query = select(PartnerRecord).where(PartnerRecord.feed == "incidents")
    rows = session.scalars(query.order_by(PartnerRecord.updated_at.desc()).limit(limit))
    return [row for row in rows if row.data.get("status") != "closed"]


def schedule_syncs(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask for each platform's sync once per its interval, the cities due together in one run.

    Cities with the same interval share a slot, so one flow run syncs them all (a task each)
    instead of a run per city: about 1,440 runs a day for ten cities instead of 14,400. The
    request's key names the interval and the slot, so every process asks for the same one.
    """
    epoch = int(now.timestamp())
    by_interval: dict[int, list[str]] = {}
    for platform in platforms(session):
        interval = max(10, platform.sync_interval_seconds or settings.partner_sync_seconds)
        by_interval.setdefault(interval, []).append(platform.city.slug)
    for interval, slugs in sorted(by_interval.items()):
        key = f"{SYNC_DUE}:{interval}s:t{epoch // interval}"
        flow_requests.enqueue(session, SYNC_DUE, key=key, parameters={"cities": sorted(slugs)})
