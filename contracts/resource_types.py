"""The typing catalogue of mutual-aid resources, and the rule of which type may stand in for which.

Every registry entry and every request line names a type by a stable hub code such as
`team.usar` or `supply.tent.cotton`. The codes are the hub's own: they never change meaning, so
stored rows, EDXL-RM messages (`<TypeStructure>` with `ValueListURN` `TYPE_VALUE_LIST_URN`) and
partner feeds can all carry them.

Where the codes come from, and what is not claimed:
- Supplies follow GB/T 38565-2020《应急物资分类及编码》: a 7-digit linear code in four levels,
  大类 one digit (1 基本生活保障物资, 2 应急装备及配套物资, 3 工程材料与机械加工设备), then 中类,
  小类 and 细类 of two digits each, 01 to 99, "99" the catch-all at every level. The catalogue
  records only the 大类 of each supply type, which follows from the standard's three categories; it
  does not invent the lower levels. `ResourceType.gbt38565` holds a full code only when an office
  that has the standard's text fills it in, and `is_gbt38565_code` checks the form of such a code.
- Rescue teams follow the kinds of YJ/T 1.1-1.6—2022《社会应急力量建设基础规范》 (building
  collapse search and rescue, mountain, water, diving, emergency medical) plus the professional
  teams the cities keep; teams that are graded use 重型/中型/轻型, the Chinese counterpart of NIMS
  Type 1/2/3, with 重型 the most capable.
- A stronger grade stands in for a weaker one (a 重型 team satisfies a 中型 line), and a type may
  list other types it stands in for (`stands_in_for`); both rules live in `satisfies`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

from contracts.partner import ResourceKind

TYPE_VALUE_LIST_URN = "urn:x-huaihai-hub:vocab:resource-type"
"""The value list that names hub type codes in EDXL-RM `<TypeStructure>`."""
GRADE_VALUE_LIST_URN = "urn:x-huaihai-hub:vocab:grade"
"""The value list that names grades in an EDXL-RM `<Keyword>`."""

_GBT38565 = re.compile(r"^[123](?:0[1-9]|[1-9][0-9]){3}$")
TYPE_CODE_PATTERN = r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+){1,3}$"


class Grade(IntEnum):
    """The capability grade of a graded resource; a lower number is more capable (重型 = 1)."""

    HEAVY = 1
    MEDIUM = 2
    LIGHT = 3

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the grade."""
        return _GRADE_ZH[self]

    def at_least(self, required: Grade) -> bool:
        """Return whether this grade is as capable as `required` or more."""
        return self <= required


_GRADE_ZH = {Grade.HEAVY: "重型", Grade.MEDIUM: "中型", Grade.LIGHT: "轻型"}


def is_gbt38565_code(code: str) -> bool:
    """Return whether `code` has the form of a GB/T 38565 code: 1-3, then three levels 01-99."""
    return bool(_GBT38565.match(code))


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One row of the typing catalogue."""

    code: str
    kind: ResourceKind
    name_zh: str
    name_en: str
    unit: str
    graded: bool = False
    gbt38565_category: int | None = None
    gbt38565: str | None = None
    stands_in_for: tuple[str, ...] = ()

    @property
    def bookable(self) -> bool:
        """Return whether each entry is one unit booked for a time (team, expert, vehicle)."""
        return self.kind in BOOKABLE_KINDS


BOOKABLE_KINDS = frozenset({ResourceKind.RESCUE_TEAM, ResourceKind.EXPERT, ResourceKind.VEHICLE})
"""Kinds whose entries are single units booked for a time window, never split by quantity."""

_LIFE = 1  # GB/T 38565 大类 1: 基本生活保障物资
_GEAR = 2  # 大类 2: 应急装备及配套物资
_WORKS = 3  # 大类 3: 工程材料与机械加工设备


def _team(code: str, zh: str, en: str, stands_in_for: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType(code, ResourceKind.RESCUE_TEAM, zh, en, "支", True, stands_in_for=stands_in_for)


def _expert(code: str, zh: str, en: str) -> ResourceType:
    return ResourceType(code, ResourceKind.EXPERT, zh, en, "人")


def _vehicle(code: str, zh: str, en: str, graded: bool = False) -> ResourceType:
    return ResourceType(code, ResourceKind.VEHICLE, zh, en, "辆", graded)


def _equipment(code: str, zh: str, en: str, unit: str) -> ResourceType:
    return ResourceType(code, ResourceKind.EQUIPMENT, zh, en, unit, gbt38565_category=_GEAR)


def _supply(
    code: str, zh: str, en: str, unit: str, category: int, stands_in_for: tuple[str, ...] = ()
) -> ResourceType:
    return ResourceType(
        code, ResourceKind.SUPPLIES, zh, en, unit, gbt38565_category=category, stands_in_for=stands_in_for
    )


_ROWS: tuple[ResourceType, ...] = (
    # Teams. YJ/T 1.2 to 1.6 name the first five kinds; the others are professional teams.
    _team("team.usar", "建筑物倒塌搜救队", "Building collapse search and rescue team"),
    _team("team.mountain", "山地搜救队", "Mountain search and rescue team"),
    _team("team.water", "水上搜救队", "Water search and rescue team"),
    _team("team.diving", "潜水救援队", "Diving rescue team"),
    _team("team.medical", "应急医疗救护队", "Emergency medical team"),
    # A comprehensive fire and rescue team is trained and equipped for collapse rescue.
    _team("team.fire_rescue", "综合性消防救援队", "Fire and rescue team", ("team.usar",)),
    _team("team.hazmat", "危化品处置队", "Hazardous chemicals team"),
    _team("team.flood", "防汛抢险队", "Flood fighting team"),
    _team("team.mine", "矿山救护队", "Mine rescue team"),
    _expert("expert.flood", "防汛专家", "Flood control expert"),
    _expert("expert.geology", "地质灾害专家", "Geological hazards expert"),
    _expert("expert.hazchem", "危化品专家", "Hazardous chemicals expert"),
    _expert("expert.structural", "结构安全专家", "Structural safety expert"),
    _expert("expert.medical", "医学救援专家", "Medical rescue expert"),
    _vehicle("vehicle.drainage", "大流量排水抢险车", "High-volume drainage truck", graded=True),
    _vehicle("vehicle.command", "移动指挥车", "Mobile command vehicle"),
    _vehicle("vehicle.comms", "应急通信保障车", "Emergency communications vehicle"),
    _vehicle("vehicle.crane", "抢险吊车", "Rescue crane truck", graded=True),
    _vehicle("vehicle.ambulance", "救护车", "Ambulance"),
    _equipment("equipment.pump.drainage", "排涝泵", "Drainage pump", "台"),
    _equipment("equipment.generator", "发电机组", "Generator set", "台"),
    _equipment("equipment.lighting", "移动照明灯塔", "Mobile lighting tower", "台"),
    _equipment("equipment.boat.assault", "冲锋舟", "Assault boat", "艘"),
    _equipment("equipment.boat.inflatable", "橡皮艇", "Inflatable boat", "艘"),
    _equipment("equipment.life_detector", "生命探测仪", "Life detector", "台"),
    _supply("supply.tent.summer", "单帐篷", "Summer tent", "顶", _LIFE),
    # A winter tent shelters as well in summer; the reverse is not true.
    _supply("supply.tent.cotton", "棉帐篷", "Cotton (winter) tent", "顶", _LIFE, ("supply.tent.summer",)),
    _supply("supply.quilt", "棉被", "Quilt", "床", _LIFE),
    _supply("supply.folding_bed", "折叠床", "Folding bed", "张", _LIFE),
    _supply("supply.water", "瓶装饮用水", "Bottled drinking water", "箱", _LIFE),
    _supply("supply.food", "方便食品", "Ready-to-eat food", "箱", _LIFE),
    _supply("supply.life_jacket", "救生衣", "Life jacket", "件", _GEAR),
    _supply("supply.sandbag", "防汛编织袋", "Sandbag", "条", _WORKS),
    _supply("supply.geotextile", "土工布", "Geotextile", "平方米", _WORKS),
    # Shelters: counted in places for people.
    ResourceType("shelter.site", ResourceKind.SHELTER, "应急避难场所", "Emergency shelter", "人"),
)

CATALOGUE: MappingProxyType[str, ResourceType] = MappingProxyType({row.code: row for row in _ROWS})
"""Every resource type by its code."""


def _check_catalogue() -> None:
    """Refuse a catalogue whose codes, stand-ins or GB/T 38565 categories are malformed."""
    for row in _ROWS:
        if not re.match(TYPE_CODE_PATTERN, row.code):
            raise ValueError(f"type code {row.code!r} is malformed")
        for other in row.stands_in_for:
            if other not in CATALOGUE or CATALOGUE[other].kind is not row.kind:
                raise ValueError(f"{row.code!r} stands in for {other!r}, which is not a type of its kind")
        if row.gbt38565 is not None and not is_gbt38565_code(row.gbt38565):
            raise ValueError(f"{row.code!r} has a malformed GB/T 38565 code {row.gbt38565!r}")
        if row.gbt38565_category not in (None, 1, 2, 3):
            raise ValueError(f"{row.code!r} has GB/T 38565 category {row.gbt38565_category}, not 1, 2 or 3")
    if len(CATALOGUE) != len(_ROWS):
        raise ValueError("a type code appears twice in the catalogue")


_check_catalogue()


def resource_type(code: str) -> ResourceType:
    """Return the catalogue row of `code`, or raise `KeyError` naming the unknown code."""
    try:
        return CATALOGUE[code]
    except KeyError:
        raise KeyError(f"unknown resource type {code!r}") from None


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A type and, for a graded type, a grade: what an entry is or the least a line accepts."""

    code: str
    grade: Grade | None = None


def satisfies(offered: TypeRef, requested: TypeRef) -> bool:
    """Return whether a resource of type `offered` may fill a line asking for `requested`.

    The type must be the one asked for or one that stands in for it (one step, not a chain: a
    stand-in is a judgement about two types, not a relation to compose). When the line asks for a
    grade, the offered grade must be that grade or a stronger one; a line without a grade takes
    any grade. An ungraded offer never fills a line that asks for a grade.
    """
    if offered.code != requested.code:
        row = CATALOGUE.get(offered.code)
        if row is None or requested.code not in row.stands_in_for:
            return False
    if requested.grade is None:
        return True
    return offered.grade is not None and offered.grade.at_least(requested.grade)


def fit_rank(offered: TypeRef, requested: TypeRef) -> int:
    """Return how closely a satisfying offer fits: 0 exact, 1 a stronger grade, 2 a stand-in type."""
    if offered.code != requested.code:
        return 2
    if requested.grade is not None and offered.grade is not None and offered.grade < requested.grade:
        return 1
    return 0
