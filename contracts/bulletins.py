"""What a coordinator or a partner platform sends to issue a bulletin (信息通报) or warning (预警)."""

from __future__ import annotations

from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from contracts.common import CitySlug, IncidentCategory, Short, Text, WarningColour, XmlChars

ExerciseRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
"""The id of the drill that sent an exercise bulletin (its public id)."""


class BulletinCreate(BaseModel):
    """A bulletin or warning to issue; the issuing city comes from the caller's identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["bulletin", "warning"] = "bulletin"
    colour: WarningColour | None = None
    category: IncidentCategory
    area: Short
    title: Short
    text: Text
    addressed_cities: tuple[CitySlug, ...] = ()
    all_neighbours: bool = False
    # public: every city sees it; restricted and private: only the issuer and the addressed
    # cities (CAP's Restricted and Private; a private one names its addressees in CAP <addresses>).
    scope: Literal["public", "restricted", "private"] = "public"
    receipt_deadline: AwareDatetime
    expires_at: AwareDatetime | None = None
    exercise: Annotated[bool, Field(strict=True)] = False
    # The drill an exercise bulletin belongs to: CAP 1.2 names the exercise in <note>.
    exercise_ref: ExerciseRef | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse a warning without a colour, a bulletin addressed to nobody, and an exercise
        reference on live traffic."""
        if self.kind == "warning" and self.colour is None:
            raise ValueError("a warning needs a colour (red, orange, yellow or blue)")
        if self.exercise_ref is not None and not self.exercise:
            raise ValueError("only an exercise bulletin names its exercise (exercise_ref)")
        if not self.addressed_cities and not self.all_neighbours:
            raise ValueError("address at least one city, or all neighbours")
        if len(set(self.addressed_cities)) != len(self.addressed_cities):
            raise ValueError("addressed_cities lists a city twice")
        return self


class ReceiptCreate(BaseModel):
    """A city's receipt (回执) for a bulletin, as its platform or a person sends it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    received_at: AwareDatetime | None = None
    acknowledged_by: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), XmlChars
    ]


class BulletinMessage(BaseModel):
    """A bulletin or warning as it leaves the hub (API answers, CAP building)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    id: UUID
    kind: Literal["bulletin", "warning"]
    issuing_city: CitySlug
    colour: WarningColour | None = None
    category: IncidentCategory
    area: Short
    title: Short
    text: Text
    scope: Literal["public", "restricted", "private"]
    addressed_cities: tuple[CitySlug, ...]
    receipt_deadline: AwareDatetime
    issued_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    exercise: bool = False
    exercise_ref: ExerciseRef | None = None
    cancelled: bool = False
