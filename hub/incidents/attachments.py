"""Photos and documents attached to an incident: checked by their bytes, kept under the instance folder.

A file is accepted only when its name's extension and its first bytes agree on one of the types
below: a name alone is whatever the uploader typed, and a type sniffed alone would let an HTML
page pass as a photo once renamed. The bytes go to `<instance>/attachments/<storage name>`, a
name the hub chooses, so no uploaded name ever reaches the file system.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from hub.incidents.models import Incident, IncidentAttachment
from hub.kernel import audit
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, InvalidInput, NotFound
from hub.kernel.types import DbSession, utcnow

FOLDER = "attachments"


@dataclass(frozen=True)
class FileType:
    """A type of file the hub accepts, with the extensions its name may have."""

    content_type: str
    extensions: tuple[str, ...]
    image: bool = False


JPEG = FileType("image/jpeg", ("jpg", "jpeg"), image=True)
PNG = FileType("image/png", ("png",), image=True)
WEBP = FileType("image/webp", ("webp",), image=True)
PDF = FileType("application/pdf", ("pdf",))
DOCX = FileType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",))
XLSX = FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx",))
ALLOWED = (JPEG, PNG, WEBP, PDF, DOCX, XLSX)
ALLOWED_EXTENSIONS = tuple(ext for t in ALLOWED for ext in t.extensions)


def sniff(data: bytes) -> FileType | None:
    """Return the accepted type the bytes are, by their signature, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"PK\x03\x04"):
        # An Office Open XML file is a ZIP with a content-type table and its main part.
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return None
        if "[Content_Types].xml" in names:
            if "word/document.xml" in names:
                return DOCX
            if "xl/workbook.xml" in names:
                return XLSX
    return None


def check(filename: str, data: bytes, max_bytes: int) -> FileType:
    """Return the file's type, or refuse it with a reason the uploader can act on."""
    if not data:
        raise InvalidInput("the file is empty", reason="attachment_empty")
    if len(data) > max_bytes:
        raise InvalidInput(
            f"the file is {len(data):,} bytes; at most {max_bytes:,} are accepted",
            reason="attachment_too_large",
        )
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    found = sniff(data)
    if found is None or extension not in found.extensions:
        raise InvalidInput(
            f"only {', '.join(ALLOWED_EXTENSIONS)} files are accepted, and the content must match the name",
            reason="attachment_type",
        )
    return found


def _clean_name(filename: str) -> str:
    """Keep the last part of an uploaded name, printable, at most 200 characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return (name or "file")[-200:]


def may_see(actor: Actor, incident: Incident) -> bool:
    """Return whether the actor may see the incident and so its attachments: any member city, or an admin."""
    return actor.city_id is not None or actor.is_admin


def attach(
    session: DbSession, actor: Actor, incident_id: int, filename: str, data: bytes, *, max_bytes: int
) -> IncidentAttachment:
    """Record an attachment for an incident the actor's city reports on or is affected by.

    Returns the row, flushed; the caller stores the bytes with `store` before it commits.
    """
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    involved = {incident.reporting_city_id, *(c.id for c in incident.affected_cities)}
    if not actor.can_write_incidents or actor.city_id not in involved:
        raise Forbidden("only the reporting and affected cities' coordinators and duty officers attach files")
    file_type = check(filename, data, max_bytes)
    attachment = IncidentAttachment(
        incident_id=incident.id,
        filename=_clean_name(filename),
        content_type=file_type.content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_name=f"{uuid.uuid4().hex}.{file_type.extensions[0]}",
        uploaded_at=utcnow(),
        city_id=actor.city_id,
        uploaded_by_id=actor.user_id,
    )
    session.add(attachment)
    session.flush()
    audit.record(
        session,
        actor,
        "incident.attachment_added",
        "incident",
        incident.id,
        after={"filename": attachment.filename, "size": attachment.size, "sha256": attachment.sha256},
    )
    return attachment


def path_of(instance_path: Path, attachment: IncidentAttachment) -> Path:
    """Return where the attachment's bytes are kept."""
    return instance_path / FOLDER / attachment.storage_name


def store(instance_path: Path, attachment: IncidentAttachment, data: bytes) -> Path:
    """Write the attachment's bytes (to a temporary name first, so no half file is ever served)."""
    target = path_of(instance_path, attachment)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def for_incident(session: DbSession, incident_id: int) -> list[IncidentAttachment]:
    """Return the incident's attachments, oldest first."""
    return list(
        session.scalars(
            select(IncidentAttachment)
            .where(IncidentAttachment.incident_id == incident_id)
            .order_by(IncidentAttachment.uploaded_at, IncidentAttachment.id)
        )
    )


def get_for(session: DbSession, actor: Actor, incident_id: int, attachment_id: int) -> IncidentAttachment:
    """Return one attachment of an incident the actor may see; any other is 'not found'."""
    attachment = session.get(IncidentAttachment, attachment_id)
    incident = session.get(Incident, incident_id)
    if attachment is None or incident is None or attachment.incident_id != incident_id:
        raise NotFound(f"no attachment {attachment_id} on incident {incident_id}")
    if not may_see(actor, incident):
        raise NotFound(f"no attachment {attachment_id} on incident {incident_id}")
    return attachment
