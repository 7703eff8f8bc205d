"""Translation and time display: Chinese first, English second, times in Asia/Shanghai."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from flask import Flask, session
from flask_babel import Babel, format_datetime, gettext

from hub.config import Settings

if TYPE_CHECKING:
    from hub.kernel.models import City

LOCALES = {"zh_CN": "中文", "en": "English"}
babel = Babel()


def init_app(app: Flask, settings: Settings) -> None:
    """Attach Babel with the hub's locale and timezone choices."""
    app.config.update(
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        BABEL_TRANSLATION_DIRECTORIES="translations",
    )
    babel.init_app(app, locale_selector=_select_locale)
    zone = ZoneInfo(settings.timezone)

    @app.template_filter("localtime")
    def localtime(value: datetime | None) -> str:
        """Show a time in the hub's zone, with the date only when it is not today."""
        if value is None:
            return ""
        local = value.astimezone(zone)
        if local.date() == datetime.now(UTC).astimezone(zone).date():
            return format_datetime(value, "HH:mm")
        return format_datetime(value, "yyyy-MM-dd HH:mm")

    @app.template_filter("countdown")
    def countdown(deadline: datetime | None) -> str:
        """Say how long is left until a deadline, or how long it is overdue."""
        if deadline is None:
            return ""
        seconds = int((deadline - datetime.now(UTC)).total_seconds())
        minutes = abs(seconds) // 60
        if minutes >= 120:
            amount = gettext("%(hours)d 小时", hours=minutes // 60)
        else:
            amount = gettext("%(minutes)d 分钟", minutes=max(minutes, 1))
        if seconds >= 0:
            return gettext("剩余 %(amount)s", amount=amount)
        return gettext("已超时 %(amount)s", amount=amount)

    @app.template_filter("overdue")
    def overdue(deadline: datetime | None) -> bool:
        """Tell whether a deadline has passed, decided now, when the page is drawn."""
        return deadline is not None and deadline <= datetime.now(UTC)

    @app.template_filter("deadline_class")
    def deadline_class(deadline: datetime | None) -> str:
        """The class of a countdown: red ('due overdue') the moment its deadline passes."""
        return "due overdue" if overdue(deadline) else "countdown"

    @app.template_filter("isotime")
    def isotime(value: datetime | None) -> str:
        """Return an ISO 8601 time for machine use (countdowns, data attributes)."""
        return value.astimezone(UTC).isoformat() if value else ""

    @app.context_processor
    def _locale_context() -> dict[str, object]:
        return {"locales": LOCALES, "current_locale": _select_locale()}


def _select_locale() -> str:
    chosen = session.get("locale")
    return chosen if chosen in LOCALES else "zh_CN"


def city_name(city: City) -> str:
    """Return a city's name in the current locale."""
    return city.name(_select_locale())


def city_choices(cities: Iterable[City]) -> list[tuple[str, str]]:
    """Return (slug, name in the current locale) pairs for a form's city field."""
    return [(c.slug, city_name(c)) for c in cities]
