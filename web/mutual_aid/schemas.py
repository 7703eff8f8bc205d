"""Response models of the mutual-aid API: registry entries, requests with their progress, commitments."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

from contracts.mutual_aid import AidRequest, AidState, EntryStatus
from web.api.models import Out, StoredTime

# Quantities and money as the ledger holds them, written as Python writes a decimal ("8.000").
Exact = Annotated[
    Decimal,
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": 'an exact decimal, e.g. "8.000"'}),
]


class AidEntryOut(Out):
    """A registry entry with its ledger; `available` is on hand less reserved and deployed."""

    id: int
    external_id: str
    owner_city: str
    type_code: str
    grade: int | None
    name: str
    unit: str
    on_hand: Exact
    reserved: Exact
    deployed: Exact
    available: Exact
    status: EntryStatus
    lat: float
    lon: float
    place: str
    verified_at: StoredTime
    verified_by: str


class AidEntryList(Out):
    """The caller's city's registry, by type and name."""

    items: list[AidEntryOut]


class AidCommitmentOut(Out):
    """An offer or commitment: `line_id` is the line's id in its request, `line` the one in paths.

    `extension_until` is the end the requester asked for while the owner decides an extension;
    `dispatched` is what left the owner, and once returned it is `returned` + `consumed` + `lost`.
    """

    id: int
    public_id: uuid.UUID
    line_id: str
    line: int
    resource_id: int
    owner_city: str
    requesting_city: str
    state: AidState
    quantity: Exact
    start: StoredTime
    end: StoredTime
    extension_until: StoredTime | None
    order_number: str | None
    estimated_cost: Exact
    actual_cost: Exact | None
    actual_cost_note: str
    owner_signed_by: str | None
    owner_signed_at: StoredTime | None
    requester_signed_by: str | None
    requester_signed_at: StoredTime | None
    cost_frozen: bool
    valid_until: StoredTime
    exercise: bool
    dispatched: Exact
    returned: Exact
    consumed: Exact
    lost: Exact


class AidLineProgress(Out):
    """How much of a line is requested, offered, committed, en route, on scene, released and returned."""

    line_id: str
    line: int
    requested: Exact
    offered: Exact
    committed: Exact
    en_route: Exact
    on_scene: Exact
    released: Exact
    returned: Exact


class AidAskOut(Out):
    """A city asked for help with a request, its ring and deadline, and its answer if any."""

    city: str
    ring: int
    deadline: StoredTime
    answer: str | None


class AidRequestOut(AidRequest, Out):
    """A request with each line's progress, the cities asked and every offer and commitment."""

    status: str
    progress: list[AidLineProgress]
    asked: list[AidAskOut]
    commitments: list[AidCommitmentOut]


class AidRequestList(Out):
    """The requests the caller's city made or was asked about, newest first."""

    items: list[AidRequestOut]
