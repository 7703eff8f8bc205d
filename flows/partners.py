"""Pull each city platform's feeds by cursor; each page's rows and the cursor commit together.

Every task opens its own session and works from ids, so a retried task does nothing twice."""

from __future__ import annotations

import logging

from prefect import flow, task

from connectors.partner_client import PartnerContractError, PartnerError
from contracts.partner import ResourceItem
from flows.bookkeeping import REQUEST_HOOKS
from flows.context import hub_session, partner_client
from hub.kernel import dead_letters
from hub.kernel.types import utcnow
from hub.mutual_aid import feed as aid_feed
from hub.partners import services as partners

log = logging.getLogger(__name__)
RETRY_DELAYS: list[float] = [1, 5, 15]


# Sync ------------------------------------------------------------------------------------------


def pull_feed(city: str, feed: str) -> int:
    """Pull one feed from its cursor; each page's rows and the cursor commit together.

    The resources feed also keeps the city's mutual-aid registry, in the same transaction as
    each page; after a full sync from the start, registry entries the feed no longer lists are
    marked out of service.
    """
    found = partner_client(city)
    if found is None:
        return 0
    client, city_id = found
    started = utcnow()
    with hub_session() as session:
        cursor = partners.begin_run(session, city_id, feed, started)
    changed = 0
    registry = aid_feed.FeedOutcome()
    listed: set[str] = set()
    try:
        for page in client.iter_changes(feed, cursor):
            items = [
                partners.FeedItem(item.id, item.updated_at, item.model_dump(mode="json"))
                for item in page.items
            ]
            resources = [item for item in page.items if isinstance(item, ResourceItem)]
            listed.update(item.id for item in resources)
            with hub_session() as session:
                changed += partners.apply_page(
                    session, city_id, feed, items, page.next_cursor, run_started=started
                )
                if resources:
                    registry.add(aid_feed.apply_resources(session, city_id, resources))
    except PartnerContractError as exc:
        # A broken payload will not mend itself on retry: keep it for a person and stop this feed.
        with hub_session() as session:
            dead_letters.record(session, "partner", exc.url, str(exc), exc.raw, city_id=city_id)
            partners.finish_run(session, city_id, feed, error=str(exc))
        return changed
    except PartnerError as exc:
        with hub_session() as session:
            partners.finish_run(session, city_id, feed, error=str(exc))
        raise
    finally:
        client.close()
    with hub_session() as session:
        if feed == "resources" and cursor is None:
            registry.add(aid_feed.retire_missing(session, city_id, listed))
        partners.finish_run(session, city_id, feed)
    if feed == "resources":
        log.info("resource feed of %s kept in the aid registry: %s", city, registry.as_dict())
    return changed


# One city's sync ("sync now") retries a feed that failed; the regular syncs of every city do not,
# as the next slot is a minute away, and each of their feeds is a plain call inside the city's
# task: a task run per feed would be 57,600 task runs a day in Prefect's database for ten cities.
sync_feed = task(name="sync_feed", retries=2, retry_delay_seconds=[2, 10])(pull_feed)


@flow(name="sync-partner", **REQUEST_HOOKS)
def sync_partner(city: str, request_id: int | None = None) -> dict[str, int]:
    """Bring one city's incidents, warnings and resources up to date."""
    results: dict[str, int] = {}
    failed = []
    for feed in partners.FEEDS:
        try:
            results[feed] = sync_feed(city, feed)
        except PartnerError as exc:
            failed.append(f"{feed}: {exc}")
    if failed:
        raise RuntimeError(f"sync of {city} incomplete: {'; '.join(failed)}")
    return results


@task
def sync_city(city: str) -> dict[str, object]:
    """Sync one city's three feeds; a failure is recorded in its sync health, not raised."""
    results: dict[str, object] = {}
    for feed in partners.FEEDS:
        try:
            results[feed] = pull_feed(city, feed)
        except PartnerError as exc:
            results[feed] = f"failed: {exc}"
    return results


@flow(name="sync-partners", **REQUEST_HOOKS)
def sync_partners(cities: list[str], request_id: int | None = None) -> dict[str, dict[str, object]]:
    """Sync every city due in this slot, a task per city side by side.

    A platform that is down shows on the sync health page and is tried again at its next slot;
    it does not fail the run, so the other cities' syncs are not repeated for its sake.
    """
    futures = {city: sync_city.submit(city) for city in cities}
    return {city: future.result() for city, future in futures.items()}
