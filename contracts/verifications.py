"""What a coordinator or a platform sends to ask for a verification (核报) or to answer one."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.common import CitySlug, Short, Text


class VerificationCreate(BaseModel):
    """A verification request (核报) to another city."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to_city: CitySlug
    subject: Short
    question: Text
    deadline: AwareDatetime
    incident_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None


class VerificationAnswerCreate(BaseModel):
    """The answer to a verification request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answer: Text
