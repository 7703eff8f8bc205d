"""The hub's tables; importing this module registers them all."""

from hub.models.audit import AuditEntry, AuditTrailIsAppendOnly
from hub.models.city import City, city_neighbours
from hub.models.exchange import (
    Bulletin,
    BulletinRecipient,
    DailyReport,
    FeedState,
    PartnerPlatform,
    PartnerRecord,
    Reminder,
    VerificationRequest,
)
from hub.models.fleet import (
    CommandState,
    DeadLetter,
    LinkageEventLink,
    LinkageSystem,
    MqttOutbox,
    Vehicle,
    VehicleCommand,
    VehiclePosition,
)
from hub.models.incident import Incident, IncidentReport, incident_affected_cities
from hub.models.notification import FlowRequest, FlowRequestStatus, Notification
from hub.models.types import UTCDateTime, utcnow
from hub.models.user import ApiToken, Role, User

__all__ = [
    "ApiToken",
    "AuditEntry",
    "AuditTrailIsAppendOnly",
    "Bulletin",
    "BulletinRecipient",
    "City",
    "CommandState",
    "DailyReport",
    "DeadLetter",
    "FeedState",
    "FlowRequest",
    "FlowRequestStatus",
    "Incident",
    "IncidentReport",
    "LinkageEventLink",
    "LinkageSystem",
    "MqttOutbox",
    "Notification",
    "PartnerPlatform",
    "PartnerRecord",
    "Reminder",
    "Role",
    "UTCDateTime",
    "User",
    "Vehicle",
    "VehicleCommand",
    "VehiclePosition",
    "VerificationRequest",
    "city_neighbours",
    "incident_affected_cities",
    "utcnow",
]
