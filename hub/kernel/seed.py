"""Load the member cities and, for the demo, a coordinator team for each city."""

from __future__ import annotations

import json
from importlib import resources
from typing import TypedDict

from sqlalchemy import select

from hub.kernel.actors import Actor
from hub.kernel.models import City, Role, User
from hub.kernel.types import DbSession
from hub.kernel.users import create_user

DEMO_PASSWORD = "huaihai-demo-2026"  # noqa: S105  # only ever seeded by the demo command


class CityRow(TypedDict):
    """One city of the bundled city file."""

    slug: str
    division_code: str
    name_zh: str
    name_en: str
    province_zh: str
    province_en: str
    centre: list[float]  # [longitude, latitude]


class CityData(TypedDict):
    """The bundled city file: the cities and the pairs of neighbouring cities."""

    about: str
    cities: list[CityRow]
    neighbours: list[list[str]]


def load_city_data() -> CityData:
    """Return the bundled city file (a copy of the region's reference data)."""
    text = resources.files("hub.data").joinpath("huaihai_cities.json").read_text(encoding="utf-8")
    data: CityData = json.loads(text)
    return data


def seed_cities(session: DbSession, data: CityData | None = None) -> list[City]:
    """Insert or update the cities and their neighbours; running it twice changes nothing."""
    data = data or load_city_data()
    by_slug = {c.slug: c for c in session.scalars(select(City))}
    for row in data["cities"]:
        city = by_slug.get(row["slug"]) or City(slug=row["slug"])
        city.division_code = row["division_code"]
        city.name_zh, city.name_en = row["name_zh"], row["name_en"]
        city.province_zh, city.province_en = row["province_zh"], row["province_en"]
        city.longitude, city.latitude = row["centre"]
        session.add(city)
        by_slug[city.slug] = city
    session.flush()
    pairs: dict[str, set[str]] = {slug: set() for slug in by_slug}
    for a, b in data["neighbours"]:
        pairs[a].add(b)
        pairs[b].add(a)
    for slug, city in by_slug.items():
        city.neighbours = [by_slug[n] for n in sorted(pairs[slug])]
    session.flush()
    return sorted(by_slug.values(), key=lambda c: c.id)


DEMO_ROLES = (
    ("coord", Role.COORDINATOR, "协调员"),
    ("duty", Role.DUTY_OFFICER, "值班员"),
    ("observer", Role.OBSERVER, "观察员"),
)


def seed_demo_users(session: DbSession, password: str = DEMO_PASSWORD) -> None:
    """Create a coordinator, a duty officer and an observer per city, and one hub admin."""
    system = Actor.system("seed")
    existing = set(session.scalars(select(User.username)))
    cities = list(session.scalars(select(City).order_by(City.id)))
    for city in cities:
        for suffix, role, label in DEMO_ROLES:
            username = f"{city.slug}-{suffix}"
            if username not in existing:
                create_user(
                    session,
                    system,
                    username=username,
                    display_name=f"{city.name_zh}{label}",
                    password=password,
                    city=city,
                    role=role,
                )
    if "admin" not in existing and cities:
        create_user(
            session,
            system,
            username="admin",
            display_name="枢纽管理员",
            password=password,
            city=cities[0],
            role=Role.ADMIN,
        )
