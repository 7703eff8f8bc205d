"""A notice to one city that an incident concerns it."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict

from contracts.common import CitySlug, Level
from contracts.incident import ExerciseFlag, Title


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
