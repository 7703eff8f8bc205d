"""The top navigation, built from the entries the capabilities declare."""

from __future__ import annotations

from flask import Flask
from flask_babel import gettext as _
from flask_login import current_user

from hub.capabilities import N_, NavEntry, all_capabilities

# The kernel's own pages, placed around the capabilities' entries by their order.
KERNEL_ENTRIES = (
    NavEntry("dashboard.index", N_("值班台"), 0),
    NavEntry("admin.dead_letter_list", N_("异常消息"), 90),
    NavEntry("admin.status", N_("运行状态"), 89),
    NavEntry("admin.audit", N_("审计日志"), 91),
    NavEntry("admin.users", N_("用户管理"), 92, roles=("admin",)),
)


# Entries from this order on fold into one "more" menu, so that the bar holds one line at 1280 px.
MORE_FROM = 45


def entries() -> list[NavEntry]:
    """Return the navigation entries of the kernel and every capability, in order."""
    found = list(KERNEL_ENTRIES)
    for capability in all_capabilities():
        found.extend(capability.nav)
    return sorted(found, key=lambda entry: entry.order)


def init_app(app: Flask) -> None:
    """Give every template `nav_entries` and `nav_more`: what the current user may see, labels
    translated, the everyday entries and the ones folded into the "more" menu."""
    ordered = entries()

    @app.context_processor
    def _nav() -> dict[str, object]:
        if not current_user.is_authenticated:
            return {"nav_entries": [], "nav_more": []}
        role = current_user.role.value
        shown = [(e, _(e.label)) for e in ordered if not e.roles or role in e.roles]
        return {
            "nav_entries": [(e, label) for e, label in shown if e.order < MORE_FROM],
            "nav_more": [(e, label) for e, label in shown if e.order >= MORE_FROM],
        }
