"""Reading API requests: a JSON body into its contract, and typed query parameters.

Every refusal is a ContractError, which the error handler answers as 422 with the problems.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel

from contracts.common import IncidentLevel
from contracts.errors import ContractError, Problem, decode_json
from hub.app import settings_of

M = TypeVar("M", bound=BaseModel)


def json_body(model: type[M]) -> M:
    """Decode the request's JSON body into `model`, refusing other content types."""
    if not request.mimetype == "application/json":
        raise ContractError(
            "the body must be JSON (Content-Type: application/json)",
            [Problem("", f"unsupported content type {request.mimetype or 'none'!r}")],
        )
    return decode_json(model, request.get_data(cache=False), settings_of(current_app).max_body_bytes)


def query_enum(name: str, parse: Any) -> Any:
    """Read an optional enum query parameter (levels by their Roman numeral)."""
    value = request.args.get(name)
    if value in (None, ""):
        return None
    try:
        return parse[value] if parse is IncidentLevel else parse(value)
    except (KeyError, ValueError) as exc:
        raise ContractError(
            f"bad query parameter {name}={value!r}", [Problem(name, "unknown value")]
        ) from exc


def query_int(name: str, default: int) -> int:
    """Read a small whole-number query parameter."""
    value = request.args.get(name, str(default))
    # ASCII digits only ("²" is a digit to str.isdigit) and few enough for any database offset.
    if not (value.isascii() and value.isdigit()) or len(value) > 6:
        raise ContractError(
            f"bad query parameter {name}={value[:20]!r}",
            [Problem(name, "must be a whole number below a million")],
        )
    return int(value)


def query_bool(name: str) -> bool | None:
    """Read an optional true/false query parameter."""
    value = request.args.get(name)
    if value in (None, ""):
        return None
    if value.lower() not in ("true", "false", "1", "0"):
        raise ContractError(f"bad query parameter {name}={value!r}", [Problem(name, "must be true or false")])
    return value.lower() in ("true", "1")


def query_time(name: str) -> datetime | None:
    """Read an optional ISO 8601 time with its offset."""
    value = request.args.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ContractError(
            f"bad query parameter {name}={value!r}", [Problem(name, "not an ISO 8601 time")]
        ) from exc
    if parsed.tzinfo is None:
        raise ContractError(
            f"bad query parameter {name}={value!r}", [Problem(name, "needs a timezone offset")]
        )
    return parsed
