"""Response models of the API's shared part: errors, cities, and small types every capability uses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

# Times the hub stores are answered as Python writes them ("…+00:00"), as the API always did.
StoredTime = Annotated[AwareDatetime, PlainSerializer(datetime.isoformat, return_type=str)]


class Out(BaseModel):
    """Base of every response body: frozen, and nothing beyond its declared fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorDetail(Out):
    """What went wrong: a stable code for programs, a message for people, and where."""

    code: str
    message: str
    details: Any = None


class ErrorBody(Out):
    """Every refusal under /api/: {"error": {"code", "message", "details"?}}."""

    error: ErrorDetail

    @classmethod
    def of(cls, code: str, message: str, details: object | None = None) -> dict[str, Any]:
        """Return the JSON of an error; `details` is left out when there are none."""
        detail = ErrorDetail(code=code, message=message, details=details)
        return cls(error=detail).model_dump(mode="json", exclude_none=details is None)


class CityOut(Out):
    """A member city with its neighbours; `centre` is [longitude, latitude]."""

    slug: str
    division_code: str
    name_zh: str
    name_en: str
    province_zh: str
    province_en: str
    centre: Annotated[list[float], Field(min_length=2, max_length=2)]
    neighbours: list[str]


class CityList(Out):
    """The member cities."""

    items: list[CityOut]


class ComponentOut(Out):
    """One part of the running hub as last checked (see /status)."""

    name: str
    kind: str
    up: bool | None
    detail: str
    checked_at: StoredTime | None
    last_seen: StoredTime | None


class NodeOut(Out):
    """One process of the hub (this one or another), as every process sees it."""

    name: str
    roles: list[str]
    host: str
    pid: int
    started_at: StoredTime
    last_seen_at: StoredTime
    stopped_at: StoredTime | None
    alive: bool


class BridgeOut(Out):
    """A city-edge broker's bridge to the regional broker, as the edge broker last announced it."""

    city: str
    city_name: str
    connected: bool
    changed_at: StoredTime
    seen_at: StoredTime


class StatusOut(Out):
    """The parts of the running hub; `ok` when every one listed in `components` is up. `nodes`:
    the hub's processes seen in the last day, alive or not; `bridges`: each city-edge broker's
    bridge, connected or not, and since when (the readiness answer leaves both out)."""

    ok: bool
    components: list[ComponentOut]
    nodes: list[NodeOut] = []
    bridges: list[BridgeOut] = []
