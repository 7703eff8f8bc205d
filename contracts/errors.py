"""The one error type for malformed input, and helpers that raise it.

Every layer that reads something from outside (an API body, a form, a partner's feed, an MQTT
payload, a CAP document) turns its failure into `ContractError`, so callers catch one type and
answer with its message: a 400 under `/api/`, a dead-letter entry for a feed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

DEFAULT_MAX_BYTES = 1_000_000

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where (a dotted path, empty for the whole) and what."""

    location: str
    message: str

    def __str__(self) -> str:
        """Render as `location: message`, or the bare message for the whole input."""
        return f"{self.location}: {self.message}" if self.location else self.message


class ContractError(ValueError):
    """Input that does not meet a contract; the message says what is wrong and where."""

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        """Keep the summary message and the individual problems for API error bodies."""
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(message)

    @classmethod
    def from_validation_error(
        cls,
        subject: str,
        error: ValidationError,
        rename: Mapping[str, str] | None = None,
    ) -> ContractError:
        """Turn a pydantic error into a message that lists each failing location."""
        problems = tuple(problems_from_validation_error(error, rename))
        listed = "; ".join(str(p) for p in problems)
        return cls(f"invalid {subject}: {listed}", problems)


def location_text(loc: Sequence[str | int], rename: Mapping[str, str] | None = None) -> str:
    """Render a pydantic location as `reports[0].body`, renaming fields when asked."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = rename.get(part, part) if rename else part
        text = f"{text}.{name}" if text else name
    return text


def problems_from_validation_error(
    error: ValidationError, rename: Mapping[str, str] | None = None
) -> list[Problem]:
    """List one `Problem` per pydantic error, with a plain message for malformed JSON."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        if item["type"] == "json_invalid":
            # pydantic's ctx carries the parser's own words ("EOF while parsing ...").
            detail = item.get("ctx", {}).get("error", item["msg"])
            problems.append(Problem("", f"malformed JSON ({detail})"))
            continue
        if item["type"] == "missing":
            problems.append(Problem(location_text(item["loc"], rename), "required but missing"))
            continue
        problems.append(Problem(location_text(item["loc"], rename), item["msg"]))
    return problems


def check_size(raw: bytes | str, max_bytes: int, subject: str) -> bytes:
    """Return `raw` as bytes, or raise when it is larger than `max_bytes`."""
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    if len(data) > max_bytes:
        raise ContractError(
            f"{subject} is {len(data)} bytes, more than the limit of {max_bytes} bytes",
            [Problem("", f"larger than {max_bytes} bytes")],
        )
    return data


def decode_json(model: type[M], raw: bytes | str, max_bytes: int = DEFAULT_MAX_BYTES) -> M:
    """Parse a JSON document into `model`, raising `ContractError` on any fault."""
    data = check_size(raw, max_bytes, f"{model.__name__} payload")
    try:
        return model.model_validate_json(data)
    except ValidationError as error:
        raise ContractError.from_validation_error(model.__name__, error) from error


def decode_data(model: type[M], data: Any) -> M:
    """Validate already-decoded data (a form's dict, say) into `model`, or raise `ContractError`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ContractError.from_validation_error(model.__name__, error) from error
