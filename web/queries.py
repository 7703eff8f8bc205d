"""Reading the UI's query strings: a bad value is the caller's mistake (400), never a crash."""

from __future__ import annotations

from datetime import date

from flask import abort, request
from flask_babel import gettext as _

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
