"""The flows the hub can start, by the name used in its flow-request outbox."""

from __future__ import annotations

from prefect import Flow

from flows.exchange import (
    chase_deadlines,
    check_daily_reports,
    deliver_verification_request,
    distribute_bulletin,
    forward_receipts_flow,
    sync_partner,
)
from flows.notify import notify_neighbours
from hub.services import bulletins, partners, verifications
from hub.services.flow_requests import CHASE_DEADLINES, CHECK_DAILY_REPORTS, NOTIFY_NEIGHBOURS

FLOWS: dict[str, Flow[..., object]] = {
    NOTIFY_NEIGHBOURS: notify_neighbours,
    partners.SYNC: sync_partner,
    bulletins.DISTRIBUTE: distribute_bulletin,
    bulletins.FORWARD: forward_receipts_flow,
    verifications.DELIVER: deliver_verification_request,
    CHASE_DEADLINES: chase_deadlines,
    CHECK_DAILY_REPORTS: check_daily_reports,
}
DEPLOYMENT_NAME = "hub"
