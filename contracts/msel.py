"""MSEL import and export: CSV for the planners' spreadsheets, JSON for machines.

CSV: UTF-8, with or without a byte-order mark (Excel writes one; the export writes one so that Excel
on a Chinese desktop opens it right). The first row is the header; columns may come in any order
and be named in English or Chinese (`COLUMNS`), with a unit in brackets ("响应时限（秒）"). Offsets
and expected-within times are `H:MM:SS` or whole seconds; a bare "10:00" is refused because
planners use it for both ten minutes and ten hours. Channels and expected actions may be written as
their codes or their Chinese labels; cities as slugs or as a name in `DrillContext.city_aliases`.

JSON: `{"schema_version": 1, "injects": [...]}` with the field names of `contracts.drills.Inject`.

Every refusal is a `ContractError` whose problems are `MselProblem`s: the row (the header is row 1,
as a spreadsheet counts; for JSON the inject's position in the list), the column or field, a code
and English text, e.g. `row 7, channel: unknown channel 'fax'` (code `unknown_channel`), which the
web layer shows as "第 7 行: 未知渠道 'fax'". A file is taken whole or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from contracts.drills import (
    MAX_INJECTS,
    DrillContext,
    ExpectedAction,
    Inject,
    InjectChannel,
    Msel,
    MselProblem,
    cross_row_problems,
    msel_problem,
)
from contracts.errors import ContractError

MAX_MSEL_BYTES = 1_000_000
# A refusal lists this many problems at most; a file wrong on every row needs fixing, not a novel.
MAX_PROBLEMS = 50


@dataclass(frozen=True, slots=True)
class Column:
    """One MSEL column: its English name (the `Inject` field it fills, or close) and Chinese names."""

    name: str
    field: str
    zh: tuple[str, ...]
    required: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("number", "number", ("序号", "编号", "注入编号"), required=True),
    Column("offset", "offset_s", ("时间偏移", "偏移时间", "注入时间"), required=True),
    Column("city", "city", ("目标城市", "城市"), required=True),
    Column("role", "role", ("目标岗位", "岗位")),
    Column("vehicle", "vehicle", ("指挥车", "车辆")),
    Column("linkage_system", "linkage_system", ("联动系统",)),
    Column("channel", "channel", ("渠道", "注入方式"), required=True),
    Column("message", "message", ("注入内容", "消息", "内容"), required=True),
    Column("expected_action", "expected_action", ("预期行动", "预期响应")),
    Column("expected_within", "expected_within_s", ("响应时限", "时限")),
    Column("objective", "objective", ("演练目标",)),
    Column("critical_task", "critical_task", ("关键任务",)),
    Column("contingency_of", "contingency_of", ("备用于", "备用注入对应")),
    Column("controller", "controller", ("控制员",)),
    Column("evaluator_notes", "evaluator_notes", ("评估要点", "评估说明")),
)
"""The columns, in export order. "目标" alone is not accepted: it means both target and objective."""

_FIELD_TO_COLUMN = {column.field: column.name for column in COLUMNS}
_TEXT_FIELDS = ("role", "message", "controller", "evaluator_notes", "objective", "critical_task")
# A cell that starts with one of these is a formula to a spreadsheet (CSV injection): the export
# puts an apostrophe before it, as spreadsheets do themselves, and the import takes it off.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_DURATION_RE = re.compile(r"^(\d{1,3}):([0-5]\d):([0-5]\d)$", re.ASCII)
_UNIT_RE = re.compile(r"\s*[(（][^()（）]*[)）]\s*$")


def _header_key(text: str) -> str:
    text = _UNIT_RE.sub("", text.strip()).strip().lower()
    return re.sub(r"[\s-]+", "_", text)


_HEADER_NAMES: dict[str, Column] = {}
for _column in COLUMNS:
    for _name in (_column.name, *_column.zh):
        _HEADER_NAMES[_header_key(_name)] = _column

_CHANNEL_NAMES = {c.label_zh: c.value for c in InjectChannel} | {c.value: c.value for c in InjectChannel}
_ACTION_NAMES = {a.label_zh: a.value for a in ExpectedAction} | {a.value: a.value for a in ExpectedAction}


def format_duration(seconds: int) -> str:
    """Write seconds as `H:MM:SS`, the form the import reads back."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def parse_duration(text: str) -> int | None:
    """Read `H:MM:SS` or whole seconds; return None for anything else (negative numbers included)."""
    text = text.strip()
    if text.isdigit() and text.isascii():
        return int(text)
    match = _DURATION_RE.match(text)
    if match is None:
        return None
    hours, minutes, seconds = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _escape_cell(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _unescape_cell(text: str) -> str:
    return text[1:] if len(text) > 1 and text[0] == "'" and text[1:].startswith(_FORMULA_STARTS) else text


# Errors ----------------------------------------------------------------------------------------


def _refuse(problems: list[MselProblem], subject: str) -> ContractError:
    shown = problems[:MAX_PROBLEMS]
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        shown.append(msel_problem(None, "", "more_problems", f"and {more} more problems", count=more))
    listed = "; ".join(str(problem) for problem in shown)
    return ContractError(f"invalid {subject}: {listed}", shown)


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _problems_of(
    error: ValidationError, row: int, rename: Mapping[str, str], *, json_location: bool
) -> list[MselProblem]:
    """Turn one inject's pydantic errors into row problems that name the column or field."""
    problems = []
    for item in error.errors(include_url=False):
        ctx = item.get("ctx") or {}
        loc = item["loc"]
        field_name = str(loc[0]) if loc else str(ctx.get("field", ""))
        shown = rename.get(field_name, field_name)
        location = f"injects[{row - 1}]" + (f".{shown}" if shown else "") if json_location else ""
        params = {key: _show(value) for key, value in ctx.items() if key != "field"}
        if item["type"] == "missing":
            problems.append(msel_problem(row, shown, "missing", "required but missing", location))
            continue
        if item["type"] == "extra_forbidden":
            problems.append(msel_problem(row, shown, "unknown_field", "unknown field", location))
            continue
        if loc and "value" not in params:
            params["value"] = _show(item.get("input"))
        problems.append(msel_problem(row, shown, item["type"], item["msg"], location, **params))
    return problems


# CSV -------------------------------------------------------------------------------------------


def _decode_text(raw: bytes | str, max_bytes: int, subject: str) -> str:
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    if len(data) > max_bytes:
        raise _refuse(
            [
                msel_problem(
                    None,
                    "",
                    "too_large",
                    f"the file is {len(data)} bytes, more than the limit of {max_bytes} bytes",
                    size=len(data),
                    limit=max_bytes,
                )
            ],
            subject,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        row = data.count(b"\n", 0, error.start) + 1
        raise _refuse(
            [
                msel_problem(
                    row,
                    "",
                    "not_utf8",
                    "the file is not UTF-8 text (in Excel, save as 'CSV UTF-8')",
                )
            ],
            subject,
        ) from error


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (row, cells) for each CSV record; a row is what a spreadsheet shows as one row."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise _refuse(
                [msel_problem(row + 1, "", "malformed_csv", f"malformed CSV ({error})")], "MSEL CSV"
            ) from error
        row += 1
        yield row, cells


def _read_header(row: int, cells: list[str]) -> tuple[list[Column | None], list[MselProblem]]:
    problems = []
    columns: list[Column | None] = []
    seen: dict[str, str] = {}
    for cell in cells:
        text = cell.strip()
        if not text:
            columns.append(None)
            continue
        column = _HEADER_NAMES.get(_header_key(text))
        if column is None:
            problems.append(
                msel_problem(row, text, "unknown_column", f"unknown column '{text}'", column=text)
            )
            columns.append(None)
            continue
        if column.name in seen:
            problems.append(
                msel_problem(
                    row,
                    text,
                    "duplicate_column",
                    f"column '{text}' repeats '{seen[column.name]}'",
                    column=text,
                    first=seen[column.name],
                )
            )
            columns.append(None)
            continue
        seen[column.name] = text
        columns.append(column)
    for column in COLUMNS:
        if column.required and column.name not in seen:
            problems.append(
                msel_problem(
                    row,
                    column.name,
                    "missing_column",
                    f"the column '{column.name}' is missing",
                    column=column.name,
                )
            )
    return columns, problems


def _cell_values(
    row: int, columns: list[Column | None], cells: list[str], context: DrillContext
) -> tuple[dict[str, Any], list[MselProblem]]:
    """Turn one row's cells into `Inject` data, refusing what cannot be read as its type."""
    problems: list[MselProblem] = []
    data: dict[str, Any] = {}
    if len(cells) > len(columns):
        extra = [cell for cell in cells[len(columns) :] if cell.strip()]
        if extra:
            problems.append(
                msel_problem(
                    row, "", "too_many_cells", f"the row has {len(cells)} cells, the header {len(columns)}"
                )
            )
    for column, cell in zip(columns, cells, strict=False):
        text = cell.strip()
        if column is None or not text:
            continue
        name = column.name
        if column.field in _TEXT_FIELDS:
            data[column.field] = _unescape_cell(text)
        elif name in ("number", "contingency_of"):
            if not (text.isdigit() and text.isascii()):
                problems.append(
                    msel_problem(
                        row, name, "not_a_number", f"'{_show(text)}' is not a whole number", value=text
                    )
                )
                continue
            data[column.field] = int(text)
        elif name in ("offset", "expected_within"):
            seconds = parse_duration(text)
            if seconds is None:
                code = "bad_offset" if name == "offset" else "bad_duration"
                problems.append(
                    msel_problem(
                        row,
                        name,
                        code,
                        f"'{_show(text)}' is not a time: write H:MM:SS (0:10:00) or whole seconds (600)",
                        value=_show(text),
                    )
                )
                continue
            data[column.field] = seconds
        elif name == "city":
            data["city"] = context.city_aliases.get(text, text)
        elif name == "channel":
            data["channel"] = _CHANNEL_NAMES.get(text, _CHANNEL_NAMES.get(text.lower(), text))
        elif name == "expected_action":
            data["expected_action"] = _ACTION_NAMES.get(text, _ACTION_NAMES.get(text.lower(), text))
        else:
            data[column.field] = text
    return data, problems


def decode_msel_csv(raw: bytes | str, context: DrillContext, *, max_bytes: int = MAX_MSEL_BYTES) -> Msel:
    """Read an MSEL from CSV, checked against the drill in `context`, or raise `ContractError`."""
    text = _decode_text(raw, max_bytes, "MSEL CSV")
    records = _records(text)
    first = next(records, None)
    if first is None or not any(cell.strip() for cell in first[1]):
        raise _refuse([msel_problem(1, "", "no_header", "the first row must name the columns")], "MSEL CSV")
    columns, problems = _read_header(*first)
    if problems:
        raise _refuse(problems, "MSEL CSV")
    injects: list[Inject] = []
    rows: list[int] = []
    failed_numbers: list[int] = []
    for row, cells in records:
        if not any(cell.strip() for cell in cells):
            continue
        if len(injects) + len(failed_numbers) >= MAX_INJECTS:
            problems.append(
                msel_problem(row, "", "too_many_injects", f"an MSEL has at most {MAX_INJECTS} injects")
            )
            break
        data, row_problems = _cell_values(row, columns, cells, context)
        if row_problems:
            problems += row_problems
            if isinstance(data.get("number"), int):
                failed_numbers.append(data["number"])
            continue
        try:
            injects.append(Inject.model_validate(data, context=context))
            rows.append(row)
        except ValidationError as error:
            problems += _problems_of(error, row, _FIELD_TO_COLUMN, json_location=False)
            if isinstance(data.get("number"), int):
                failed_numbers.append(data["number"])
    problems += cross_row_problems(injects, rows, other_numbers=failed_numbers, field_names=_FIELD_TO_COLUMN)
    if problems:
        problems.sort(key=lambda problem: problem.row or 0)
        raise _refuse(problems, "MSEL CSV")
    return Msel(injects=tuple(injects))


def encode_msel_csv(msel: Msel, *, headers: Literal["en", "zh"] = "en") -> bytes:
    """Write an MSEL as CSV in UTF-8 with a byte-order mark; `decode_msel_csv` reads it back."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.name if headers == "en" else column.zh[0] for column in COLUMNS])
    for inject in msel.injects:
        writer.writerow([_csv_cell(inject, column, headers) for column in COLUMNS])
    return out.getvalue().encode("utf-8-sig")


def _csv_cell(inject: Inject, column: Column, headers: str) -> str:
    value = getattr(inject, column.field)
    if value is None:
        return ""
    if column.name in ("offset", "expected_within"):
        return format_duration(value)
    if isinstance(value, InjectChannel | ExpectedAction):
        return value.label_zh if headers == "zh" else value.value
    if isinstance(value, str):
        return _escape_cell(value)
    return str(value)


# JSON ------------------------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key '{key}' appears twice in one object")
        result[key] = value
    return result


def decode_msel_json(raw: bytes | str, context: DrillContext, *, max_bytes: int = MAX_MSEL_BYTES) -> Msel:
    """Read an MSEL from JSON, checked against the drill in `context`, or raise `ContractError`."""
    text = _decode_text(raw, max_bytes, "MSEL JSON")
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise _refuse(
            [
                msel_problem(
                    None,
                    "",
                    "malformed_json",
                    f"malformed JSON ({error.msg})",
                    where,
                    line=error.lineno,
                    column=error.colno,
                )
            ],
            "MSEL JSON",
        ) from error
    except ValueError as error:
        raise _refuse([msel_problem(None, "", "malformed_json", str(error))], "MSEL JSON") from error
    items = _json_injects(document)
    problems: list[MselProblem] = []
    injects: list[Inject] = []
    rows: list[int] = []
    failed_numbers: list[int] = []
    for index, item in enumerate(items):
        row = index + 1
        try:
            injects.append(Inject.model_validate(item, context=context))
            rows.append(row)
        except ValidationError as error:
            problems += _problems_of(error, row, {}, json_location=True)
            number = item.get("number") if isinstance(item, dict) else None
            if isinstance(number, int):
                failed_numbers.append(number)
    problems += [
        _json_location(problem) for problem in cross_row_problems(injects, rows, other_numbers=failed_numbers)
    ]
    if problems:
        problems.sort(key=lambda problem: problem.row or 0)
        raise _refuse(problems, "MSEL JSON")
    return Msel(injects=tuple(injects))


def _json_location(problem: MselProblem) -> MselProblem:
    assert problem.row is not None  # cross-row problems always name their row
    return msel_problem(
        problem.row,
        problem.field,
        problem.code,
        problem.message,
        f"injects[{problem.row - 1}].{problem.field}",
        **problem.params_dict,
    )


def _json_injects(document: Any) -> list[Any]:
    """Check the envelope and return its list of injects."""
    problems = []
    if not isinstance(document, dict):
        problems.append(msel_problem(None, "", "not_an_object", "the document must be a JSON object"))
    else:
        for key in document:
            if key not in ("schema_version", "injects"):
                problems.append(msel_problem(None, key, "unknown_field", "unknown field", key))
        version = document.get("schema_version", 1)
        if version != 1 or isinstance(version, bool):
            problems.append(
                msel_problem(
                    None,
                    "schema_version",
                    "unsupported_schema_version",
                    "schema_version must be 1",
                    "schema_version",
                    value=_show(version),
                )
            )
        items = document.get("injects")
        if not isinstance(items, list):
            problems.append(
                msel_problem(None, "injects", "missing", "a list of injects is required", "injects")
            )
        elif len(items) > MAX_INJECTS:
            problems.append(
                msel_problem(
                    None,
                    "injects",
                    "too_many_injects",
                    f"an MSEL has at most {MAX_INJECTS} injects",
                    "injects",
                )
            )
        if not problems and isinstance(items, list):
            return list(items)
    raise _refuse(problems, "MSEL JSON")


def encode_msel_json(msel: Msel) -> bytes:
    """Write an MSEL as indented UTF-8 JSON (Chinese as is); `decode_msel_json` reads it back."""
    return msel.model_dump_json(indent=2).encode("utf-8")
