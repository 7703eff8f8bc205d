"""Enumerations and small types shared by every contract."""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, StringConstraints, WithJsonSchema


class IncidentCategory(StrEnum):
    """The four categories of the Emergency Response Law (突发事件应对法)."""

    NATURAL = "natural_disaster"
    ACCIDENT = "accident_disaster"
    PUBLIC_HEALTH = "public_health"
    SOCIAL_SECURITY = "social_security"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name duty officers use."""
        return _CATEGORY_ZH[self]


_CATEGORY_ZH = {
    IncidentCategory.NATURAL: "自然灾害",
    IncidentCategory.ACCIDENT: "事故灾难",
    IncidentCategory.PUBLIC_HEALTH: "公共卫生事件",
    IncidentCategory.SOCIAL_SECURITY: "社会安全事件",
}


class IncidentLevel(IntEnum):
    """Incident grade, I the gravest; on the wire it is the roman numeral."""

    I = 1  # noqa: E741 - the grade is called "I" in every plan and form
    II = 2
    III = 3
    IV = 4

    @property
    def roman(self) -> str:
        """Return the roman numeral, as written in plans ("II")."""
        return self.name

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the grade."""
        return _LEVEL_ZH[self]


_LEVEL_ZH = {
    IncidentLevel.I: "特别重大",
    IncidentLevel.II: "重大",
    IncidentLevel.III: "较大",
    IncidentLevel.IV: "一般",
}


def parse_level(value: Any) -> IncidentLevel:
    """Accept a level as "I".."IV", 1..4 or an `IncidentLevel`; refuse anything else."""
    if isinstance(value, IncidentLevel):
        return value
    # bool is an int in Python; `true` must not become level I.
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4:
        return IncidentLevel(value)
    if isinstance(value, str) and value.strip().upper() in IncidentLevel.__members__:
        return IncidentLevel[value.strip().upper()]
    raise ValueError(f"level must be one of I, II, III, IV (or 1 to 4), not {value!r}")


Level = Annotated[
    IncidentLevel,
    BeforeValidator(parse_level),
    PlainSerializer(lambda level: level.roman, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "enum": ["I", "II", "III", "IV"],
            "description": "Incident level: I 特别重大, II 重大, III 较大, IV 一般",
        }
    ),
]
"""An incident level field: reads "I".."IV" or 1..4, writes the roman numeral in JSON."""


class IncidentStatus(StrEnum):
    """Where an incident stands in its handling."""

    REPORTED = "reported"
    RESPONDING = "responding"
    CLOSED = "closed"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the status."""
        return _STATUS_ZH[self]


_STATUS_ZH = {
    IncidentStatus.REPORTED: "已接报",
    IncidentStatus.RESPONDING: "处置中",
    IncidentStatus.CLOSED: "已结束",
}


class ReportKind(StrEnum):
    """The three kinds of incident report a city sends (初报, 续报, 终报)."""

    INITIAL = "initial"
    FOLLOW_UP = "follow_up"
    FINAL = "final"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the report kind."""
        return _REPORT_KIND_ZH[self]


_REPORT_KIND_ZH = {
    ReportKind.INITIAL: "初报",
    ReportKind.FOLLOW_UP: "续报",
    ReportKind.FINAL: "终报",
}


class WarningColour(StrEnum):
    """Warning colours, red the gravest, as used by Chinese warning plans."""

    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    BLUE = "blue"

    @property
    def cap_severity(self) -> str:
        """Return the CAP 1.2 `<severity>` value the colour stands for."""
        return _COLOUR_SEVERITY[self]

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the colour, as in "红色预警"."""
        return _COLOUR_ZH[self]


_COLOUR_SEVERITY = {
    WarningColour.RED: "Extreme",
    WarningColour.ORANGE: "Severe",
    WarningColour.YELLOW: "Moderate",
    WarningColour.BLUE: "Minor",
}

_COLOUR_ZH = {
    WarningColour.RED: "红色",
    WarningColour.ORANGE: "橙色",
    WarningColour.YELLOW: "黄色",
    WarningColour.BLUE: "蓝色",
}

CitySlug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,31}$")]
"""A member city's short code, such as "xuzhou" or "suzhou-ah"; cities are data, never code."""


# Characters XML 1.0 cannot carry, not even as character references (XML 1.0, 2.2): the C0
# controls other than tab, LF and CR, surrogates, and the non-characters U+FFFE and U+FFFF. Text
# the hub stores ends up in CAP, Atom and partner deliveries, so it never holds them.
NOT_XML_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def refuse_control_characters(value: Any) -> Any:
    """Return `value`, or raise `ValueError` if it is a string holding a character XML 1.0 cannot
    carry (a C0 control other than tab, LF and CR, a surrogate, U+FFFE or U+FFFF)."""
    if isinstance(value, str) and (match := NOT_XML_TEXT.search(value)):
        raise ValueError(
            f"holds the character U+{ord(match.group()):04X} at position {match.start()}; control "
            "characters other than tab, line feed and carriage return are not accepted in text"
        )
    return value


XmlChars = BeforeValidator(refuse_control_characters)
"""The text rule of every contract: no control characters. Put it last in a text type,
`Annotated[str, StringConstraints(...), XmlChars]`, so it runs before the trimming (a control
character cannot hide at either end: U+001F is whitespace to `str.strip`) and the bounds keep
their usual messages."""

# Free text of forms and messages: no control characters, trimmed, never empty, bounded.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), XmlChars]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), XmlChars]
