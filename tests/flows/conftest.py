"""Fixtures of the flow tests: the app flows use, and the cities' platforms as real simulators."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from connectors.sims.partner import PartnerSimulator
from flows.context import use_app
from hub.app import settings_of
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from hub.partners import services as partners

ADMIN = Actor("system", "tests", None, Role.ADMIN)


@pytest.fixture
def flow_app(app: Flask) -> Iterator[Flask]:
    """Make flow tasks use the test's app."""
    use_app(app)
    yield app
    use_app(None)


@pytest.fixture
def platforms(flow_app: Flask, city: Callable[[str], object]) -> Iterator[Callable[..., PartnerSimulator]]:
    """Start a city's platform simulator and register it with the hub; all stop at the end."""
    started: list[PartnerSimulator] = []

    def start(slug: str, **options: object) -> PartnerSimulator:
        options.setdefault("seed", 7)
        simulator = PartnerSimulator(slug, token=f"token-{slug}", **options).start()  # type: ignore[arg-type]
        started.append(simulator)
        partners.register(
            db.session, ADMIN, city(slug), simulator.url, f"token-{slug}", settings=settings_of(flow_app)
        )
        db.session.commit()
        return simulator

    yield start
    for simulator in started:
        simulator.stop()
