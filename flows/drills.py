"""Play a drill: STARTEX, each inject's delivery, flags, ENDEX and the AAR draft, one short flow each.

The scheduler (`hub.drills.services.schedule_steps`) reads the inject table on every tick and
enqueues a keyed flow request per due step (`drill:{id}:inject:{n}`, …); each flow here does that
one step and returns. No run sleeps between injects or holds a worker for the drill's length: the
inject table is the timer. Every step is guarded in the database (a conditional UPDATE on the
drill's status or the inject's state), so a retried or duplicated request does nothing twice.
"""

from __future__ import annotations

import logging

from prefect import flow, task
from prefect.futures import wait

from contracts.drills import InjectChannel
from flows.bookkeeping import REQUEST_HOOKS
from flows.bulletins import deliver_bulletin
from flows.context import current_app, hub_session, hub_settings
from hub.drills import services as drills

log = logging.getLogger(__name__)
RETRY_DELAYS: list[float] = [1, 5]


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def deliver_inject(drill_id: int, number: int) -> str:
    """Deliver one inject through its channel unless it already went out; return the outcome."""
    with hub_session() as session:
        delivery = drills.deliver(session, drill_id, number, mqtt_root=hub_settings().mqtt_root)
    log.info("drill %s inject %s: %s %s", drill_id, number, delivery.outcome, delivery.ref or "")
    return delivery.outcome


@flow(name=drills.STARTEX, **REQUEST_HOOKS)
def drill_startex(drill_id: int, request_id: int | None = None) -> bool:
    """Start an approved drill; a second request finds it started and does nothing."""
    with hub_session() as session:
        return drills.start(session, drill_id)


# The order a run delivers the injects due together: those with a further hop first (a platform's
# bulletin has an HTTP call to make, an MQTT message the broker's), then those the delivery itself
# puts on a desk.
_HOPS = {
    InjectChannel.PARTNER_PLATFORM.value: 0,
    InjectChannel.MQTT_VEHICLE.value: 1,
    InjectChannel.MQTT_LINKAGE.value: 1,
}


@flow(name=drills.INJECT, **REQUEST_HOOKS)
def drill_inject(
    drill_id: int, number: int, also: list[int] | None = None, request_id: int | None = None
) -> str:
    """Deliver a due inject and the drill's others due with it (`also`), one task each; those to
    a city's platform go out to the platform in this run. Return the first inject's outcome."""
    numbers = [number, *(also or [])]
    with hub_session() as session:
        channels = {row.number: row.channel for row in drills.get(session, drill_id).injects}
    outcomes: dict[int, str] = {}
    futures = {}
    for n in sorted(numbers, key=lambda n: (_HOPS.get(channels.get(n, ""), 2), numbers.index(n))):
        outcomes[n] = deliver_inject(drill_id, n)
        if outcomes[n] != "delivered":
            continue
        if _HOPS.get(channels.get(n, "")) == 1:
            _publish_now()
        elif channels.get(n) == InjectChannel.PARTNER_PLATFORM.value:
            with hub_session() as session:
                found = drills.platform_deliveries(session, drills.get(session, drill_id), n).get(n)
            if found is not None and found[2] is None:
                # The bulletin pipeline's own task (its retries, its split of transient and
                # permanent errors), while the other injects go out; the distribute-bulletin
                # request queued with the bulletin finds it delivered. Left undelivered, the
                # failure is recorded on the recipient and redelivery takes over.
                futures[n] = deliver_bulletin.submit(found[0], found[1])
    if any(outcome == "delivered" for outcome in outcomes.values()):
        _publish_now()  # a warning's notices to the crews travel by MQTT too
    wait(list(futures.values()))
    for n, future in futures.items():
        if not future.state.is_completed():
            log.warning("drill %s inject %s: the platform has not accepted it yet", drill_id, n)
    return outcomes[number]


def _publish_now() -> None:
    """Wake this process's MQTT bridge, when it runs one (`hub run` does), to publish the outbox
    now: an inject over MQTT is then on the broker at its time, not at the bridge's next poll."""
    kicker = current_app().extensions.get("mqtt_kicker")
    if kicker is not None:
        kicker.wake()


@flow(name=drills.FLAG, **REQUEST_HOOKS)
def drill_flag(drill_id: int, number: int | None = None, request_id: int | None = None) -> list[int]:
    """Flag the drill's injects unanswered in time and release their contingencies."""
    with hub_session() as session:
        return drills.flag_unanswered(session, drill_id)


@flow(name=drills.ENDEX, **REQUEST_HOOKS)
def drill_endex(drill_id: int, request_id: int | None = None) -> bool:
    """End the drill: close its timetable and expire its undelivered exercise commands."""
    with hub_session() as session:
        return drills.end(session, drill_id)


@flow(name=drills.AAR, **REQUEST_HOOKS)
def drill_aar(drill_id: int, request_id: int | None = None) -> bool:
    """Draft the after-action report's figures of an ended drill."""
    with hub_session() as session:
        return drills.draft_aar(session, drill_id)
