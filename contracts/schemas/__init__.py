"""JSON Schemas of the contracts, generated from the models and kept beside them.

Partner cities read these files to know what the hub sends and accepts; run
`python -m contracts.schemas` after changing a model, and a test fails until you do.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from contracts.incidents import FollowUpCreate, IncidentCreate, IncidentFollowUp, IncidentReport, Notification
from contracts.mqtt import (
    Ack,
    Command,
    ConnectionState,
    JointAlert,
    LinkageEvent,
    Telemetry,
    VehicleStatus,
)
from contracts.partner import (
    BulletinDelivery,
    DeliveryAck,
    ErrorBody,
    IncidentPage,
    MeetingInvitationDelivery,
    PartnerIncident,
    PartnerWarning,
    Receipt,
    ResourceItem,
    ResourcePage,
    VerificationAnswer,
    VerificationRequestDelivery,
    WarningPage,
)

SCHEMA_DIR = Path(__file__).resolve().parent
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

SCHEMAS: dict[str, type[BaseModel]] = {
    "incident-report": IncidentReport,
    "incident-follow-up": IncidentFollowUp,
    "incident-create": IncidentCreate,
    "follow-up-create": FollowUpCreate,
    "notification": Notification,
    "mqtt-telemetry": Telemetry,
    "mqtt-vehicle-status": VehicleStatus,
    "mqtt-connection-state": ConnectionState,
    "mqtt-command": Command,
    "mqtt-ack": Ack,
    "mqtt-linkage-event": LinkageEvent,
    "mqtt-joint-alert": JointAlert,
    "partner-incident": PartnerIncident,
    "partner-warning": PartnerWarning,
    "partner-resource": ResourceItem,
    "partner-incident-page": IncidentPage,
    "partner-warning-page": WarningPage,
    "partner-resource-page": ResourcePage,
    "partner-bulletin": BulletinDelivery,
    "partner-delivery-ack": DeliveryAck,
    "partner-receipt": Receipt,
    "partner-verification-request": VerificationRequestDelivery,
    "partner-verification-answer": VerificationAnswer,
    "partner-meeting-invitation": MeetingInvitationDelivery,
    "partner-error": ErrorBody,
}


def schema_path(name: str, directory: Path = SCHEMA_DIR) -> Path:
    """Return where the schema called `name` is kept."""
    return directory / f"{name}.schema.json"


def render_schemas() -> dict[str, str]:
    """Render every registered model's JSON Schema as the text its file must hold."""
    rendered = {}
    for name, model in SCHEMAS.items():
        schema = {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema()}
        text = json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True)
        rendered[name] = text + "\n"
    return rendered


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file into `directory` and return the paths written."""
    written = []
    for name, text in render_schemas().items():
        path = schema_path(name, directory)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
