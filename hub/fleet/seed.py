"""The demo's fleet: vehicles and a 119 system per city, with passwords for the simulators."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from hub.fleet import services as fleet
from hub.kernel.actors import Actor
from hub.kernel.models import City
from hub.kernel.types import DbSession


@dataclass(frozen=True)
class PeerCredentials:
    """How a simulated peer logs in to the broker (demo only)."""

    kind: str  # "vehicle" or "linkage"
    city: str
    code: str
    username: str
    password: str


DEMO_VEHICLES_PER_CITY = 2


def seed_demo_fleet(
    session: DbSession, vehicles_per_city: int = DEMO_VEHICLES_PER_CITY
) -> list[PeerCredentials]:
    """Register demo vehicles and a 119 system per city; give each a fresh password to hand the simulators."""
    system = Actor.system("seed")
    credentials: list[PeerCredentials] = []
    for city in session.scalars(select(City).order_by(City.id)):
        for number in range(1, vehicles_per_city + 1):
            code = f"v{number:02d}"
            vehicle = fleet.vehicle_by_code(session, city.slug, code)
            if vehicle is None:
                vehicle, password = fleet.register_vehicle(
                    session, system, city, code, f"{city.name_zh.removesuffix('市')}{number}号指挥车"
                )
            else:
                password = fleet.reset_password(vehicle)
            credentials.append(PeerCredentials("vehicle", city.slug, code, vehicle.mqtt_username, password))
        linkage = fleet.linkage_system_by_code(session, city.slug, "fire119")
        if linkage is None:
            linkage, password = fleet.register_linkage_system(
                session, system, city, "fire119", "119", f"{city.name_zh}119指挥中心"
            )
        else:
            password = fleet.reset_password(linkage)
        credentials.append(PeerCredentials("linkage", city.slug, "fire119", linkage.mqtt_username, password))
    session.flush()
    return credentials
