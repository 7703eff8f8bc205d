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


def entries() -> list[NavEntry]:
    """Return the navigation entries of the kernel and every capability, in order."""
    found = list(KERNEL_ENTRIES)
    for capability in all_capabilities():
        found.extend(capability.nav)
    return sorted(found, key=lambda entry: entry.order)


def init_app(app: Flask) -> None:
    """Give every template `nav_entries`: what the current user may see, labels translated."""
    ordered = entries()

    @app.context_processor
    def _nav() -> dict[str, object]:
        if not current_user.is_authenticated:
            return {"nav_entries": []}
        role = current_user.role.value
        shown = [e for e in ordered if not e.roles or role in e.roles]
        return {"nav_entries": [(e, _(e.label)) for e in shown]}
