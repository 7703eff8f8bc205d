"""The hub's capabilities, and what each one contributes to the rest of the hub.

A capability (incidents, bulletins, vehicles, …) has one name and one home in every layer:
`contracts/<name>.py`, `hub/<name>/`, `flows/<name>.py`, `web/<name>/`. Its package in `hub/`
declares, in `CAPABILITY`, everything it adds to the shared parts: its tables, its flows, its
recurring schedules, its desk items, its navigation entries, its web blueprints and its broker
accounts. The app factory, the flow dispatcher, the scheduler, the desk and the broker files
collect these declarations; adding a capability means adding its name to `NAMES` below.

Declarations refer to code of the upper layers (`flows/`, `web/`) by "module:attribute" strings,
which those layers resolve (`resolve`), so that `hub/` never imports them; a test checks that
every reference resolves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from hub.kernel import retention

if TYPE_CHECKING:
    from hub.config import Settings
    from hub.kernel.types import DbSession

# The one list of the hub's capabilities, in the order the navigation shows them.
NAMES = (
    "incidents",
    "bulletins",
    "verifications",
    "daily_reports",
    "consultations",
    "fleet",
    "partners",
    "mutual_aid",
    "drills",
    "duty",
)


def N_(message: str) -> str:
    """Mark a message for the catalogue; the web layer translates it when it shows it."""
    return message


@dataclass(frozen=True)
class Schedule:
    """A recurring job: `enqueue(session, now, settings)` asks for whatever is due at `now`.

    It runs on every scheduler tick and must be idempotent per time slot: it enqueues flow
    requests whose keys name the slot, so however many processes tick, each slot runs once.
    """

    name: str
    enqueue: Callable[[DbSession, datetime, Settings], None]
    # A job whose steps are due at times of their own (a drill's injects) may also declare a
    # timer: `timer(session, now, settings)` enqueues only those steps, cheaply, and returns when
    # the next one is due (None: nothing is coming). The scheduler then wakes at that moment
    # instead of at its next tick, so a step due between two ticks is not left waiting for one.
    timer: Callable[[DbSession, datetime, Settings], datetime | None] | None = None


@dataclass(frozen=True)
class NavEntry:
    """A link in the top navigation: an endpoint, its label (a catalogue message) and its place.

    `roles` limits it to people of those roles (role values such as "coordinator"); empty means all.
    """

    endpoint: str
    label: str
    order: int
    primary: bool = False
    roles: tuple[str, ...] = ()


# How urgent a desk item is before its deadline is looked at: the incident's level for notices
# of level I and II incidents, then everything that has a deadline.
RANK_LEVEL_I, RANK_LEVEL_II, RANK_DEADLINE = 0, 1, 5


@dataclass(frozen=True)
class DeskItem:
    """One line on a city's desk, rendered by the capability's own template.

    Urgent items are ordered by `rank` (0 first: a level I incident outranks any deadline), then
    by `due_at` (soonest first); `subject` is what the template shows. `key`
    names the item for as long as it exists ("<capability>:<kind>:<id>"): the desk acknowledges
    and alerts by it. `exercise` items (drills) go to the desk's exercise lane, never the live one.
    `alert` items sound and flash when they first appear, until a person acknowledges them.
    """

    template: str
    subject: Any
    due_at: datetime | None = None
    key: str | None = None
    exercise: bool = False
    alert: bool = False
    rank: int = RANK_DEADLINE


@dataclass(frozen=True)
class BrokerAccount:
    """An MQTT account of the registry: its password hash and the topics it may use."""

    username: str
    password_hash: str
    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capability:
    """What one capability contributes; every field but `name` is optional."""

    name: str
    models: tuple[str, ...] = ()  # modules that define its tables
    flows: Mapping[str, str] = field(default_factory=dict)  # flow-request name -> "flows.x:flow"
    schedules: tuple[Schedule, ...] = ()
    blueprints: tuple[str, ...] = ()  # "web.x.views:bp": UI blueprints (CSRF-protected)
    api_blueprints: tuple[str, ...] = ()  # "web.x.api:bp": bearer or session + CSRF header
    nav: tuple[NavEntry, ...] = ()
    # Desk contributions, each `(session, city_id, settings) -> items`:
    urgent: Callable[[DbSession, int, Settings], list[DeskItem]] | None = None  # what the city owes now
    waiting: Callable[[DbSession, int, Settings], list[DeskItem]] | None = None  # what it waits on
    desk_panels: tuple[str, ...] = ()  # templates of panels below the urgent items
    desk_context: Callable[[DbSession, int, Settings], dict[str, object]] | None = None
    # `(session, city_id) -> token`: index lookups that change whenever anything the panels show
    # for the city changes (they read nothing but `desk_context`, the city, the person's role and
    # language, and show absolute times). With it, a render of the panels is kept and reused
    # while the token stands: the desk skips the context and the panels' templates.
    desk_panel_token: Callable[[DbSession, int], Hashable] | None = None
    # `(session) -> {city_id: token}`: a cheap value per city that changes whenever what the
    # capability shows on that city's desk changes (the key None: on every city's desk).
    desk_version: Callable[[DbSession], Mapping[int | None, object]] | None = None
    # `(session) -> token`: index lookups only, asked every 250 ms; it must change with whatever
    # changes a desk and is not written to the audit trail (e.g. vehicles going off the air).
    desk_probe: Callable[[DbSession], object] | None = None
    broker_accounts: Callable[[DbSession, str], list[BrokerAccount]] | None = None  # (session, live root)


# What the kernel itself runs, declared as a capability declares its own.
KERNEL_FLOWS: Mapping[str, str] = {retention.PRUNE: "flows.retention:prune_retention"}
KERNEL_SCHEDULES: tuple[Schedule, ...] = (Schedule("retention", retention.schedule_prune),)


@cache
def all_capabilities() -> tuple[Capability, ...]:
    """Return the declaration of every capability, in `NAMES` order."""
    found = []
    for name in NAMES:
        module = importlib.import_module(f"hub.{name}")
        capability: Capability = module.CAPABILITY
        if capability.name != name:
            raise RuntimeError(f"hub.{name} declares itself as {capability.name!r}")
        found.append(capability)
    return tuple(found)


def load_models() -> None:
    """Import the kernel's tables and every capability's, registering them on the metadata."""
    importlib.import_module("hub.kernel.models")
    for capability in all_capabilities():
        for module in capability.models:
            importlib.import_module(module)


def flow_names() -> dict[str, str]:
    """Return every flow-request name, the kernel's first, with the flow that serves it."""
    names: dict[str, str] = dict(KERNEL_FLOWS)
    for capability in all_capabilities():
        for name, target in capability.flows.items():
            if name in names:
                raise RuntimeError(f"flow {name!r} is declared twice")
            names[name] = target
    return names


def resolve(target: str) -> Any:
    """Import "module:attribute" and return the attribute."""
    module_name, _, attribute = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def schedules() -> Iterator[Schedule]:
    """Yield the kernel's recurring jobs, then every capability's."""
    yield from KERNEL_SCHEDULES
    for capability in all_capabilities():
        yield from capability.schedules
