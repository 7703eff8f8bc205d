"""Joint consultations (联席会商) and the regular joint conference (联席会议), with their action items."""

from __future__ import annotations

from hub.action_items import services as action_items
from hub.capabilities import N_, Capability, NavEntry, Schedule
from hub.consultations import desk, services

CAPABILITY = Capability(
    name="consultations",
    # The action items' tables belong to the shared engine in hub/action_items; meetings are
    # their first user, so their declaration brings them along.
    models=("hub.action_items.models", "hub.consultations.models"),
    flows={
        services.PROPOSE: "flows.consultations:propose_consultation",
        services.INVITE: "flows.consultations:deliver_invitations",
        services.REMIND_ANSWERS: "flows.consultations:remind_invitations",
        services.QUORUM: "flows.consultations:check_quorum",
        services.PLAN: "flows.consultations:plan_conference",
        services.SEND_AGENDA: "flows.consultations:send_agenda",
        services.DISTRIBUTE_MINUTES: "flows.consultations:distribute_minutes",
        action_items.REMIND: "flows.consultations:remind_action_item",
    },
    schedules=(
        Schedule("unanswered invitations", services.schedule_reminders),
        Schedule("invitations platforms did not take", services.schedule_platform_retries),
        Schedule("quorum at the start", services.schedule_quorum),
        Schedule("conference planning", services.schedule_planning),
        Schedule("agenda deadline", services.schedule_agenda),
        Schedule("action-item reminders", action_items.schedule_reminders),
    ),
    blueprints=("web.consultations.views:bp",),
    api_blueprints=("web.consultations.api:bp",),
    # The action items are chased daily by the cities that own them, so they have their own entry;
    # the conference and the assessment are reached from the consultations page.
    nav=(
        NavEntry("consultations.consultation_list", N_("会商"), 35),
        # Under "more": the overdue ones are on the desk already.
        NavEntry("consultations.action_item_list", N_("督办事项"), 46),
    ),
    urgent=desk.urgent,
    waiting=desk.waiting,
)
