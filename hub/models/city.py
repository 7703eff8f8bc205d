"""Member cities and who borders whom."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.extensions import db

# Stored in both directions so "neighbours of X" is one join.
city_neighbours = Table(
    "city_neighbours",
    db.metadata,
    Column("city_id", ForeignKey("cities.id", ondelete="CASCADE"), primary_key=True),
    Column("neighbour_id", ForeignKey("cities.id", ondelete="CASCADE"), primary_key=True),
)


class City(db.Model):
    """A member city of the hub."""

    __tablename__ = "cities"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    division_code: Mapped[str] = mapped_column(String(12), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    province_zh: Mapped[str] = mapped_column(String(64))
    province_en: Mapped[str] = mapped_column(String(64))
    longitude: Mapped[float] = mapped_column(Float)
    latitude: Mapped[float] = mapped_column(Float)

    neighbours: Mapped[list[City]] = relationship(
        secondary=city_neighbours,
        primaryjoin=lambda: City.id == city_neighbours.c.city_id,
        secondaryjoin=lambda: City.id == city_neighbours.c.neighbour_id,
        order_by=lambda: City.slug,
    )

    def name(self, locale: str) -> str:
        """Return the city's name in the given locale."""
        return self.name_zh if locale.startswith("zh") else self.name_en

    def __repr__(self) -> str:
        return f"<City {self.slug}>"
