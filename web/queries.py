"""Reading the UI's query strings (a bad value is the caller's mistake: 400, never a crash), and
writing its lists as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, request
from flask_babel import gettext as _

from hub.app import settings_of

MAX_PAGE = 100_000  # far beyond any list the hub holds, and well inside a database offset
YEARS = range(1970, 2101)  # what a report grid can show; also keeps local-to-UTC sums in range


def page_number(name: str = "page") -> int:
    """Return the 1-based page number of a list, refusing anything that is not a sane one."""
    value = request.args.get(name, "1").strip() or "1"
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value[:7]) <= MAX_PAGE:
        abort(400, description=_("页码必须是 1 到 %(most)d 之间的整数。", most=MAX_PAGE))
    return int(value)


def month(name: str, default: date) -> tuple[int, int]:
    """Return (year, month) of a `YYYY-MM` query parameter, the default month when absent."""
    value = request.args.get(name) or default.strftime("%Y-%m")
    year, _sep, number = value.partition("-")
    digits = year + number
    well_formed = len(year) == 4 and len(number) == 2 and digits.isascii() and digits.isdigit()
    if well_formed and int(year) in YEARS and 1 <= int(number) <= 12:
        return int(year), int(number)
    abort(400, description=_("月份格式应为“年-月”（1970 至 2100 年），例如 2026-11。"))


def day_range(first: str = "from", last: str = "to") -> tuple[datetime | None, datetime | None]:
    """Return the UTC bounds [start, end) of the local days `from`…`to` (YYYY-MM-DD, both inclusive)."""
    zone = ZoneInfo(settings_of(current_app).timezone)
    bounds: list[datetime | None] = []
    for name, extra in ((first, 0), (last, 1)):
        value = request.args.get(name, "").strip()
        if not value:
            bounds.append(None)
            continue
        try:
            day = date.fromisoformat(value)
        except ValueError:
            abort(400, description=_("日期格式应为“年-月-日”，例如 2026-11-30。"))
        if day.year not in YEARS:
            abort(400, description=_("日期格式应为“年-月-日”，例如 2026-11-30。"))
        start = datetime.combine(day + timedelta(days=extra), time(), tzinfo=zone)
        bounds.append(start.astimezone(UTC))
    return bounds[0], bounds[1]


def text(name: str, longest: int = 100) -> str | None:
    """Return a free-text search parameter, trimmed; None when empty; 400 when too long."""
    value = request.args.get(name, "").strip()
    if len(value) > longest or "\x00" in value:
        abort(400, description=_("搜索内容最多 %(most)d 个字符。", most=longest))
    return value or None


def csv_response(header: list[str], rows: Iterable[Iterable[object]], filename: str) -> Response:
    """Answer a CSV download: UTF-8 with a byte-order mark (spreadsheets then read Chinese), a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        "\ufeff" + buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def local_text(value: datetime | None) -> str:
    """Write a stored UTC time in the hub's zone for an export, to the second."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(settings_of(current_app).timezone)).strftime("%Y-%m-%d %H:%M:%S")
