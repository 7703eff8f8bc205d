"""What a coordinator or a platform sends to file a daily or zero report (日报告/零报告)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from contracts.common import XmlChars


class DailyReportCreate(BaseModel):
    """A city's daily report (日报告) or zero report (零报告) for one day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zero: bool = False
    body: Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000), XmlChars] = ""

    @model_validator(mode="after")
    def _body_unless_zero(self) -> Self:
        """A daily report says what happened; only a zero report may be empty."""
        if not self.zero and not self.body:
            raise ValueError("a daily report needs a body; send a zero report when nothing happened")
        return self
