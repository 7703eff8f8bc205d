"""Read the member cities and their neighbours."""

from __future__ import annotations

from sqlalchemy import select

from hub.kernel.errors import NotFound
from hub.kernel.models import City
from hub.kernel.types import DbSession


def all_cities(session: DbSession) -> list[City]:
    """Return every member city in a stable order."""
    return list(session.scalars(select(City).order_by(City.id)))


def by_id(session: DbSession, city_id: int) -> City:
    """Return one city by its id."""
    city = session.get(City, city_id)
    if city is None:
        raise NotFound(f"unknown city id: {city_id}", details={"city_id": city_id})
    return city


def by_slug(session: DbSession, slug: str) -> City:
    """Return one city or fail with a message naming the unknown slug."""
    city = session.scalar(select(City).where(City.slug == slug))
    if city is None:
        raise NotFound(f"unknown city: {slug!r}", details={"city": slug})
    return city


def by_slugs(session: DbSession, slugs: list[str]) -> list[City]:
    """Return the cities for the slugs, failing on the first unknown one."""
    found = {c.slug: c for c in session.scalars(select(City).where(City.slug.in_(slugs)))}
    unknown = [s for s in slugs if s not in found]
    if unknown:
        raise NotFound(f"unknown city: {', '.join(unknown)}", details={"cities": unknown})
    return [found[s] for s in slugs]
