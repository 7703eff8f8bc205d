"""The OpenAPI 3.1 document of /api/v1, built from the contract models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from contracts.bulletins import BulletinCreate, BulletinMessage, ReceiptCreate
from contracts.daily_reports import DailyReportCreate
from contracts.incidents import FollowUpCreate, IncidentCreate, IncidentReport, IncidentUpdate, Notification
from contracts.mutual_aid import RegistryEntry
from contracts.verifications import VerificationAnswerCreate, VerificationCreate

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "401": _json(_ref("Error"), "Not logged in, or a missing, malformed or revoked bearer token"),
    "403": _json(_ref("Error"), "Forbidden for the caller's city or role; nothing changed"),
    "422": _json(_ref("Error"), "The body or a parameter breaks the contract"),
}


def _page_of(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "page", "per_page", "total", "pages"],
        "properties": {
            "items": {"type": "array", "items": _ref(name)},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
            "pages": {"type": "integer"},
        },
    }


def items_of(name: str) -> dict[str, Any]:
    """Return the schema of a list answer: {"items": [...]}."""
    return {"type": "object", "properties": {"items": {"type": "array", "items": _ref(name)}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, fmt: str = "uuid") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": fmt},
    }


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document (built once per process)."""
    _, defs = models_json_schema(
        [
            (IncidentReport, "serialization"),
            (IncidentCreate, "validation"),
            (FollowUpCreate, "validation"),
            (IncidentUpdate, "validation"),
            (Notification, "serialization"),
            (BulletinCreate, "validation"),
            (BulletinMessage, "serialization"),
            (ReceiptCreate, "validation"),
            (VerificationCreate, "validation"),
            (VerificationAnswerCreate, "validation"),
            (DailyReportCreate, "validation"),
            (RegistryEntry, "validation"),
        ],
        ref_template=REF,
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "stable machine-readable code"},
                    "message": {"type": "string"},
                    "details": {},
                },
            }
        },
    }
    schemas["City"] = {
        "type": "object",
        "required": ["slug", "division_code", "name_zh", "name_en", "centre", "neighbours"],
        "properties": {
            "slug": {"type": "string"},
            "division_code": {"type": "string"},
            "name_zh": {"type": "string"},
            "name_en": {"type": "string"},
            "province_zh": {"type": "string"},
            "province_en": {"type": "string"},
            "centre": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            "neighbours": {"type": "array", "items": {"type": "string"}},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Huaihai Hub API",
            "version": "1.0.0",
            "description": "Incidents and notifications shared between the Huaihai region's cities. "
            "Authenticate with a per-city bearer token; every write acts for the token's city.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/cities": {
                "get": {
                    "operationId": "listCities",
                    "summary": "List the member cities",
                    "responses": {"200": _json(items_of("City"), "The cities"), **ERRORS},
                }
            },
            "/cities/{slug}": {
                "get": {
                    "operationId": "getCity",
                    "summary": "One member city",
                    "parameters": [_path("slug", "slug")],
                    "responses": {
                        "200": _json(_ref("City"), "The city"),
                        "404": _json(_ref("Error"), "Unknown city"),
                        **ERRORS,
                    },
                }
            },
            "/incidents": {
                "get": {
                    "operationId": "listIncidents",
                    "summary": "List incidents, newest first",
                    "parameters": [
                        _query("city", {"type": "string"}, "reporting or affected city"),
                        _query("level", {"enum": ["I", "II", "III", "IV"]}, "this level or more severe"),
                        _query("category", {"type": "string"}, "incident category"),
                        _query("status", {"enum": ["reported", "responding", "closed"]}, "status"),
                        _query("open", {"type": "boolean"}, "only incidents not closed"),
                        _query("exercise", {"type": "boolean"}, "drill or live incidents only"),
                        _query(
                            "since",
                            {"type": "string", "format": "date-time"},
                            "reported at or after",
                        ),
                        _query("page", {"type": "integer", "minimum": 1}, "page number"),
                        _query(
                            "per_page",
                            {"type": "integer", "minimum": 1, "maximum": 100},
                            "page size",
                        ),
                    ],
                    "responses": {
                        "200": _json(_page_of("IncidentReport"), "A page of incidents"),
                        **ERRORS,
                    },
                },
                "post": {
                    "operationId": "createIncident",
                    "summary": "Record an incident for the caller's city",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("IncidentCreate")}},
                    },
                    "responses": {
                        "201": _json(_ref("IncidentReport"), "Recorded"),
                        "404": _json(_ref("Error"), "An affected city is unknown"),
                        "413": _json(_ref("Error"), "Body too large"),
                        **ERRORS,
                    },
                },
            },
            "/incidents/{incident_id}": {
                "get": {
                    "operationId": "getIncident",
                    "summary": "One incident with its reports",
                    "parameters": [_path("incident_id")],
                    "responses": {
                        "200": _json(_ref("IncidentReport"), "The incident"),
                        "404": _json(_ref("Error"), "No such incident"),
                        **ERRORS,
                    },
                },
                "patch": {
                    "operationId": "updateIncident",
                    "summary": "Change level, status or affected cities (reporting city only)",
                    "parameters": [_path("incident_id")],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("IncidentUpdate")}},
                    },
                    "responses": {
                        "200": _json(_ref("IncidentReport"), "The changed incident"),
                        "404": _json(_ref("Error"), "No such incident"),
                        **ERRORS,
                    },
                },
            },
            "/incidents/{incident_id}/reports": {
                "post": {
                    "operationId": "addIncidentReport",
                    "summary": "Add a follow-up or final report",
                    "parameters": [_path("incident_id")],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("FollowUpCreate")}},
                    },
                    "responses": {
                        "201": _json(_ref("IncidentReport"), "The incident with the new report"),
                        "404": _json(_ref("Error"), "No such incident"),
                        "409": _json(_ref("Error"), "The incident is closed"),
                        **ERRORS,
                    },
                }
            },
            "/notifications": {
                "get": {
                    "operationId": "listNotifications",
                    "summary": "The caller's city's notifications",
                    "parameters": [
                        _query("unread", {"type": "boolean"}, "only unread"),
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "how many"),
                    ],
                    "responses": {"200": _json(items_of("Notification"), "Newest first"), **ERRORS},
                }
            },
            "/notifications/{notification_id}/read": {
                "post": {
                    "operationId": "readNotification",
                    "summary": "Mark a notification as read",
                    "parameters": [_path("notification_id")],
                    "responses": {
                        "200": _json(_ref("Notification"), "Marked"),
                        "404": _json(_ref("Error"), "No such notification"),
                        **ERRORS,
                    },
                }
            },
            **_exchange_paths(),
            **_aid_paths(),
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI document"}},
                }
            },
        },
    }


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _exchange_paths() -> dict[str, Any]:
    """Describe the information-exchange routes (bulletins, CAP, verification, daily reports, sync)."""
    receipt = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "delivered_at": {"type": ["string", "null"]},
            "receipt_at": {"type": ["string", "null"]},
            "acknowledged_by": {"type": ["string", "null"]},
            "reminded": {"type": "boolean"},
            "flagged": {"type": "boolean"},
        },
    }
    bulletin = {
        "allOf": [
            _ref("BulletinMessage"),
            {"type": "object", "properties": {"receipts": {"type": "array", "items": receipt}}},
        ]
    }
    verification = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "from_city": {"type": "string"},
            "to_city": {"type": "string"},
            "subject": {"type": "string"},
            "question": {"type": "string"},
            "deadline": {"type": "string"},
            "answer": {"type": ["string", "null"]},
            "answered_at": {"type": ["string", "null"]},
            "flagged": {"type": "boolean"},
        },
    }
    xml = {"description": "CAP 1.2 XML", "content": {"application/cap+xml": {"schema": {"type": "string"}}}}
    return {
        "/bulletins": {
            "get": {
                "operationId": "listBulletins",
                "summary": "Bulletins the caller's city may see",
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"items": {"type": "array", "items": bulletin}}},
                        "Newest first",
                    ),
                    **ERRORS,
                },
            },
            "post": {
                "operationId": "issueBulletin",
                "summary": "Issue a bulletin or warning",
                "requestBody": _body("BulletinCreate"),
                "responses": {"201": _json(bulletin, "Issued; deliveries queued"), **ERRORS},
            },
        },
        "/bulletins/{public_id}": {
            "get": {
                "operationId": "getBulletin",
                "summary": "One bulletin with its receipts",
                "parameters": [_path("public_id")],
                "responses": {
                    "200": _json(bulletin, "The bulletin"),
                    "404": _json(_ref("Error"), "Unknown, or restricted and not addressed to you"),
                    **ERRORS,
                },
            }
        },
        "/bulletins/{public_id}/receipts": {
            "post": {
                "operationId": "postReceipt",
                "summary": "Record the caller's city's receipt (once)",
                "parameters": [_path("public_id")],
                "requestBody": _body("ReceiptCreate"),
                "responses": {
                    "201": _json(receipt, "Recorded"),
                    "200": _json(receipt, "Already recorded"),
                    **ERRORS,
                },
            }
        },
        "/bulletins/{public_id}/cancel": {
            "post": {
                "operationId": "cancelBulletin",
                "summary": "Cancel a bulletin of the caller's city; the platforms that took it are told",
                "parameters": [_path("public_id")],
                "responses": {
                    "200": _json(bulletin, "Cancelled (now or before)"),
                    "403": _json(_ref("Error"), "Not the issuing city"),
                    **ERRORS,
                },
            }
        },
        "/bulletins/{public_id}/cap": {
            "get": {
                "operationId": "getBulletinCap",
                "summary": "A bulletin as CAP 1.2 XML",
                "parameters": [_path("public_id")],
                "responses": {"200": xml, **ERRORS},
            }
        },
        "/cap/feed.atom": {
            "get": {
                "operationId": "capFeed",
                "summary": "Current bulletins and warnings as a CAP Atom feed",
                "responses": {
                    "200": {
                        "description": "Atom feed",
                        "content": {"application/atom+xml": {"schema": {"type": "string"}}},
                    },
                    **ERRORS,
                },
            }
        },
        "/warnings/cap": {
            "post": {
                "operationId": "postCapWarning",
                "summary": "Turn a CAP 1.2 alert into a warning",
                "requestBody": {
                    "required": True,
                    "content": {"application/cap+xml": {"schema": {"type": "string"}}},
                },
                "responses": {
                    "201": _json(bulletin, "Issued"),
                    "409": _json(_ref("Error"), "The same alert was issued before"),
                    **ERRORS,
                },
            }
        },
        "/verifications": {
            "get": {
                "operationId": "listVerifications",
                "summary": "Requests sent and received",
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"items": {"type": "array", "items": verification}}},
                        "Newest first",
                    ),
                    **ERRORS,
                },
            },
            "post": {
                "operationId": "createVerification",
                "summary": "Send a verification request",
                "requestBody": _body("VerificationCreate"),
                "responses": {"201": _json(verification, "Sent"), **ERRORS},
            },
        },
        "/verifications/{public_id}/answer": {
            "post": {
                "operationId": "answerVerification",
                "summary": "Answer a request to the caller's city",
                "parameters": [_path("public_id")],
                "requestBody": _body("VerificationAnswerCreate"),
                "responses": {
                    "200": _json(verification, "Answered"),
                    "409": _json(_ref("Error"), "Already answered"),
                    **ERRORS,
                },
            }
        },
        "/verification-requests/{public_id}/answers": {
            "post": {
                "operationId": "answerFromPlatform",
                "summary": "A city platform's answer, in the partner contract's VerificationAnswer form",
                "parameters": [_path("public_id")],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": _json(verification, "Answered"),
                    "409": _json(_ref("Error"), "Already answered"),
                    **ERRORS,
                },
            }
        },
        "/daily-reports": {
            "post": {
                "operationId": "fileDailyReport",
                "summary": "File today's daily or zero report",
                "requestBody": _body("DailyReportCreate"),
                "responses": {
                    "201": _json({"type": "object"}, "Filed"),
                    "409": _json(_ref("Error"), "Already filed today"),
                    **ERRORS,
                },
            }
        },
        "/partners/health": {
            "get": {
                "operationId": "partnerHealth",
                "summary": "Sync health of every city's platform",
                "responses": {"200": _json({"type": "object"}, "Per city"), **ERRORS},
            }
        },
        "/partners/{slug}/sync": {
            "post": {
                "operationId": "partnerSync",
                "summary": "Sync a city's platform now",
                "parameters": [_path("slug", "slug")],
                "responses": {"202": _json({"type": "object"}, "Requested"), **ERRORS},
            }
        },
    }


def _aid_paths() -> dict[str, Any]:
    """Describe the mutual-aid routes (registry, requests, offers, steps, EDXL-RM 1.0)."""
    obj = {"type": "object"}
    rm_xml = {"content": {"application/xml": {"schema": {"type": "string"}}}}
    conflict = _json(
        _ref("Error"), "Not enough left, or the state changed meanwhile; details say what is left"
    )

    def op(
        op_id: str, summary: str, ok: str = "200", body: dict[str, Any] | None = None, **extra: Any
    ) -> Any:
        found: dict[str, Any] = {
            "operationId": op_id,
            "summary": summary,
            "responses": {ok: _json(obj, "Done"), "409": conflict, **ERRORS},
            **extra,
        }
        if body is not None:
            found["requestBody"] = body
        return found

    json_body = {"required": True, "content": {"application/json": {"schema": obj}}}
    return {
        "/aid/registry": {"get": op("listAidRegistry", "The caller's city's registry with its ledger")},
        "/aid/registry/{external_id}": {
            "put": op(
                "putAidEntry",
                "Add or update an entry of the caller's city",
                body=_body("RegistryEntry"),
                parameters=[_path("external_id", "string")],
            )
        },
        "/aid/requests": {
            "get": op("listAidRequests", "Requests the caller's city made or was asked about"),
            "post": op("createAidRequest", "Ask the other cities for help", "201", json_body),
        },
        "/aid/requests/{public_id}": {
            "get": op("getAidRequest", "A request with each line's progress", parameters=[_path("public_id")])
        },
        "/aid/requests/{public_id}/decline": {
            "post": op(
                "declineAidRequest",
                "Answer that the caller's city cannot help",
                parameters=[_path("public_id")],
            )
        },
        "/aid/requests/{public_id}/edxl": {
            "get": op(
                "exportAidRequest",
                "The request's exchange as EDXL-RM 1.0 XML; ?step=n for the n-th message",
                parameters=[
                    _path("public_id"),
                    _query("step", {"type": "integer", "minimum": 0}, "which message"),
                ],
            )
        },
        "/aid/lines/{line_id}/offers": {
            "post": op(
                "offerAid",
                "Offer an entry for a line (its package when no quantity is given)",
                "201",
                json_body,
                parameters=[_path("line_id", "int32")],
            )
        },
        "/aid/commitments/{commitment_id}/{action}": {
            "post": op(
                "stepAidCommitment",
                "Accept, decline, withdraw, authorise, dispatch, arrive, release, return or cancel",
                parameters=[_path("commitment_id", "int32"), _path("action", "string")],
            )
        },
        "/aid/edxl": {
            "post": op(
                "importEdxl",
                "Import a partner's RequestResource or CommitResource",
                body={"required": True, **rm_xml},
            )
        },
    }
