"""Incidents (突发事件) as cities exchange them, and what clients post to create or extend one."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)

from contracts.common import CitySlug, IncidentCategory, IncidentStatus, Level, ReportKind, XmlChars

# Clocks of ten cities' platforms drift; a report a few minutes "from the future" is skew, not
# an error, but anything later is a wrong date typed into a form.
CLOCK_SKEW = timedelta(minutes=5)


def _distinct(cities: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a city that is listed twice."""
    seen = set()
    for city in cities:
        if city in seen:
            raise ValueError(f"city {city!r} is listed more than once")
        seen.add(city)
    return cities


AffectedCities = Annotated[
    tuple[CitySlug, ...],
    Field(min_length=1, max_length=10, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), XmlChars]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000), XmlChars]
Location = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), XmlChars]
# WGS-84 degrees of the place, picked on the map; both or neither.
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), XmlChars]
Source = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), XmlChars]
# One paragraph of a standard report (nature, extent, trend, measures taken).
ReportText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4_000), XmlChars]
# A count of people; None means not known yet, which is not the same as none. Strict, so that
# "3" or 3.0 typed by a partner's client is refused rather than guessed.
Count = Annotated[int, Strict(), Field(ge=0, le=10_000_000)]
# Lax bool parsing would read "yes" or "1" as an exercise; drill and live traffic must never mix
# by accident, so only a real JSON boolean is accepted.
ExerciseFlag = Annotated[bool, Strict()]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Place(_Contract):
    """A place given by its coordinates as well as its `location` text."""

    latitude: Latitude | None = None
    longitude: Longitude | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        """Refuse half a position."""
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: give both or neither")
        return self


class _Situation(_Place):
    """What a report says of the situation, field by field as in a standard incident report."""

    extent: ReportText = ""
    trend: ReportText = ""
    measures: ReportText = ""
    deaths: Count | None = None
    injured: Count | None = None
    missing: Count | None = None


class IncidentFollowUp(_Situation):
    """One report on an incident (初报, 续报 or 终报) from one city."""

    kind: ReportKind
    body: Body
    reported_at: AwareDatetime
    city: CitySlug
    location: Location = ""


class IncidentReport(_Situation):
    """An incident as exchanged between cities."""

    schema_version: Literal[1] = 1
    id: UUID
    reporting_city: CitySlug
    category: IncidentCategory
    level: Level
    title: Title
    description: Description = ""
    location: Location = ""
    occurred_at: AwareDatetime
    reported_at: AwareDatetime
    affected_cities: AffectedCities
    status: IncidentStatus = IncidentStatus.REPORTED
    exercise: ExerciseFlag = False
    reports: tuple[IncidentFollowUp, ...] = ()
    source: Source = ""
    nature: ReportText = ""

    @model_validator(mode="after")
    def _occurred_before_reported(self) -> Self:
        """Refuse an incident said to occur after it was reported."""
        if self.occurred_at > self.reported_at + CLOCK_SKEW:
            raise ValueError("occurred_at is after reported_at (more than 5 minutes of clock skew)")
        return self


class IncidentCreate(_Situation):
    """What an API client or the coordinator's form posts to open an incident."""

    category: IncidentCategory
    level: Level
    title: Title
    description: Description = ""
    location: Location = ""
    occurred_at: AwareDatetime
    affected_cities: AffectedCities
    exercise: ExerciseFlag = False
    source: Source = ""
    nature: ReportText = ""


class FollowUpCreate(_Situation):
    """What a client posts to add a report (续报 by default) to an incident."""

    kind: ReportKind = ReportKind.FOLLOW_UP
    body: Body
    location: Location = ""


class IncidentUpdate(_Contract):
    """What the reporting city may change after recording; a field left out stays as it is."""

    level: Level | None = None
    status: IncidentStatus | None = None
    affected_cities: AffectedCities | None = None


class Notification(BaseModel):
    """Tell `recipient_city` about an incident, because it is affected or a neighbour."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    id: UUID
    incident_id: UUID
    recipient_city: CitySlug
    reason: Literal["affected", "neighbour"]
    level: Level
    title: Title
    reporting_city: CitySlug
    created_at: AwareDatetime
    # A notice about a drill must say so wherever it is shown, apart from the incident itself.
    exercise: ExerciseFlag = False
