"""Reading API requests: a JSON body into its contract, the query string into its model.

Every refusal is a ContractError, which the error handler answers as 422 with the problems. The
query types below keep the query string's long-standing rules (levels by their Roman numeral,
true/false/1/0, small whole numbers, times with an offset) and describe them in the document.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from flask import current_app, request
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, ValidationError

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


def query_model(model: type[M]) -> M:
    """Read the query string into `model`; an empty value counts as left out."""
    values = {name: value for name, value in request.args.items() if value != ""}
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ContractError.from_validation_error("query", error) from error


def _whole_number(value: Any) -> Any:
    # ASCII digits only ("²" is a digit to str.isdigit) and few enough for any database offset.
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 6):
        raise ValueError("must be a whole number below a million")
    return value


def _true_or_false(value: Any) -> Any:
    if isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError("must be true or false")
        return value.lower() in ("true", "1")
    return value


# Bounds go on the field (`Field(1, ge=1, le=…)`), where the document shows them.
QueryInt = Annotated[int, BeforeValidator(_whole_number)]
MAX_QUERY_INT = 999_999
QueryBool = Annotated[bool, BeforeValidator(_true_or_false)]
QueryTime = AwareDatetime


class Query(BaseModel):
    """Base of query-string models: parameters the model does not name are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")
