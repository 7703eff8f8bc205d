"""What the consultations capability puts on a city's desk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.action_items import services as action_items
from hub.capabilities import DeskItem
from hub.consultations import services
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Consultations proposed to the city, invitations it (or its experts) must answer, overdue items."""
    items = [
        DeskItem("consultations/_urgent_proposal.html", meeting, meeting.starts_at)
        for meeting in services.proposals_for(session, city_id)
    ]
    items += [
        DeskItem("consultations/_urgent_invitation.html", invitation, invitation.meeting.starts_at)
        for invitation in services.invitations_to_answer(session, city_id)
    ]
    items += [
        DeskItem("consultations/_urgent_expert_invitation.html", invitation, invitation.meeting.starts_at)
        for invitation in services.experts_to_answer(session, city_id)
    ]
    items += [
        DeskItem("consultations/_urgent_action_item.html", item, action_items.overdue_since(item))
        for item in action_items.overdue_for(session, city_id)
    ]
    return items


def waiting(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Overdue action items the city follows up as the chair of the meeting that opened them."""
    return [
        DeskItem("consultations/_waiting_action_item.html", item, action_items.overdue_since(item))
        for item in action_items.overdue_chaired_by(session, city_id)
    ]
