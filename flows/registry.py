"""The flows the hub can start, by the name used in its flow-request outbox."""

from __future__ import annotations

from prefect import Flow

from flows.notify import notify_neighbours
from hub.services.flow_requests import NOTIFY_NEIGHBOURS

FLOWS: dict[str, Flow[..., object]] = {
    NOTIFY_NEIGHBOURS: notify_neighbours,
}
DEPLOYMENT_NAME = "hub"
