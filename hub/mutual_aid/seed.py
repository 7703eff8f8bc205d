"""The demo registry: teams, pumps, generators, boats, tents, shelters and experts in every city."""

from __future__ import annotations

import zlib
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from contracts.mutual_aid import AidPackage, Contact, GeoPoint, RegistryEntry
from contracts.resource_types import CATALOGUE, Grade
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role
from hub.kernel.types import DbSession, utcnow
from hub.mutual_aid import services
from hub.mutual_aid.models import AidResource

# (external id, type, grade, base quantity, name suffix, package: personnel, daily rate)
DEMO_STOCK: tuple[tuple[str, str, Grade | None, int, str, tuple[int, int] | None], ...] = (
    ("team-flood-1", "team.flood", Grade.MEDIUM, 1, "防汛抢险队", (40, 24000)),
    ("team-water-1", "team.water", Grade.LIGHT, 1, "水上搜救队", (20, 15000)),
    ("pumps", "equipment.pump.drainage", None, 12, "排涝泵", (6, 1200)),
    ("generators", "equipment.generator", None, 8, "发电机组", (2, 800)),
    ("assault-boats", "equipment.boat.assault", None, 10, "冲锋舟", (3, 600)),
    ("inflatables", "equipment.boat.inflatable", None, 15, "橡皮艇", None),
    ("tents", "supply.tent.summer", None, 800, "单帐篷储备", None),
    ("sandbags", "supply.sandbag", None, 20000, "防汛编织袋", None),
    ("life-jackets", "supply.life_jacket", None, 1500, "救生衣", None),
    ("shelter-1", "shelter.site", None, 3000, "中心城区应急避难场所", None),
    ("expert-flood-1", "expert.flood", None, 1, "防汛专家", (1, 1500)),
    ("v01", "vehicle.command", None, 1, "1号指挥车", (4, 3000)),
)


def _scaled(base: int, slug: str, external_id: str) -> Decimal:
    """Vary a city's stock from the base by -30 % to +30 %, the same on every run."""
    if base == 1:
        return Decimal(1)
    spread = zlib.crc32(f"{slug}:{external_id}".encode()) % 61 - 30
    return Decimal(max(1, round(base * (100 + spread) / 100)))


def seed_demo_registry(session: DbSession) -> int:
    """Register each city's demo stock it does not hold yet; return how many entries were added."""
    now = utcnow()
    added = 0
    for city in session.scalars(select(City).order_by(City.id)):
        actor = Actor("system", "seed", city.id, Role.COORDINATOR)
        have = set(
            session.scalars(select(AidResource.external_id).where(AidResource.owner_city_id == city.id))
        )
        short = city.name_zh.removesuffix("市")
        for number, (external_id, type_code, grade, base, suffix, package) in enumerate(DEMO_STOCK):
            if external_id in have:
                continue
            row = CATALOGUE[type_code]
            # Spread the entries a few km around the city centre, as depots are.
            offset = (number % 4 - 1.5) * 0.02
            services.register_entry(
                session,
                actor,
                RegistryEntry(
                    id=external_id,
                    owner_city=city.slug,
                    type_code=type_code,
                    kind=row.kind,
                    grade=grade,
                    name=f"{short}{suffix}",
                    quantity=_scaled(base, city.slug, external_id),
                    unit=row.unit,
                    location=GeoPoint(lat=city.latitude + offset, lon=city.longitude - offset),
                    place=f"{city.name_zh}应急物资储备库",
                    contact=Contact(name=f"{short}应急局值班室", phone=f"0{city.division_code[:4]}-12350"),
                    package=AidPackage(
                        personnel=package[0],
                        daily_rate=Decimal(package[1]),
                        self_sufficiency_hours=72,
                        mobilise_minutes=120,
                    )
                    if package
                    else None,
                    verified_at=now - timedelta(days=number),
                    verified_by=f"{short}应急局",
                    updated_at=now,
                ),
            )
            added += 1
    session.flush()
    return added
