"""Turn every failure into a clear answer: JSON under /api/, a page elsewhere."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask, flash, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import AnonymousUserMixin
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.exc import DBAPIError, OperationalError, StatementError
from werkzeug.exceptions import HTTPException

from contracts.errors import ContractError
from hub.extensions import db
from hub.kernel.errors import ServiceError
from hub.kernel.storage import is_storage_full
from web.api.models import ErrorBody

log = logging.getLogger(__name__)

# Stable codes for HTTP-level failures, so API clients never parse messages.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
    503: "database_unavailable",
    507: "storage_full",
}


HTML_MESSAGES = {
    400: _l("请求无效，请检查后重试。"),
    401: _l("请先登录。"),
    403: _l("您无权执行此操作：只能为本市接报、续报和下达指令，观察员只能查看。"),
    404: _l("要查看的内容不存在或已被删除。"),
    405: _l("此页面不接受这种请求方式。"),
    413: _l("提交的内容过大，请缩减后重试。"),
    415: _l("不支持所提交内容的格式。"),
    422: _l("输入有误，请检查后重试。"),
    429: _l("请求过于频繁，请稍后重试。"),
    500: _l("服务器内部错误，已记录。请稍后重试。"),
    503: _l("数据库暂时无法连接，本次操作未执行（已保存的内容不受影响）。请稍后重试。"),
    507: _l("服务器存储空间已满，本次提交未保存（已保存的内容不受影响）。请通知运维人员清理空间后重试。"),
}

# Refusals the pages say in the reader's language, by the reason the service gave; a
# refusal not listed here is shown as the service worded it.
REFUSALS = {
    "csv_columns": _l("CSV 缺少以下列：%(columns)s。"),
    "csv_too_long": _l("一次最多导入 %(max)d 行。"),
    "csv_empty": _l("第 %(line)d 行 %(column)s 列不能为空；整份未导入。"),
    "csv_too_long_text": _l("第 %(line)d 行 %(column)s 列过长；整份未导入。"),
    "csv_date": _l("第 %(line)d 行 %(column)s 列不是日期（YYYY-MM-DD）；整份未导入。"),
    "csv_shift": _l("第 %(line)d 行 %(column)s 列须为 day/night 或 白班/夜班；整份未导入。"),
    "csv_kind": _l(
        "第 %(line)d 行 %(column)s 列须为 desk/coordinator/leader 或 值班室/联络员/领导；整份未导入。"
    ),
    "csv_twice": _l("第 %(line)d 行与前面的行重复；整份未导入。"),
    "csv_phone": _l("第 %(line)d 行 %(column)s 列不是电话号码；整份未导入。"),
    "csv_no_phone": _l("第 %(line)d 行须至少填写电话或手机；整份未导入。"),
    "csv_control_character": _l("第 %(line)d 行 %(column)s 列含有不允许的控制字符；整份未导入。"),
    "own_city_only": _l("只能为本市办理此事项。"),
    "occurred_in_future": _l("发生时间不能晚于当前时间。"),
    "incident_closed": _l("事件已结束，不再接受续报。"),
    "no_affected_city": _l("事件至少涉及一个城市。"),
    "verify_own_city": _l("核实请求须发给其他城市。"),
    "deadline_past": _l("时限须晚于当前时间。"),
    "already_answered": _l("该请求已答复。"),
    "no_other_city": _l("通报须至少送达一个其他城市。"),
    "bulletin_cancelled": _l("该通报已撤销。"),
    "all_received": _l("所有通报城市均已收到该通报。"),
    "report_future_day": _l("不能报送未来日期的日报。"),
    "report_filed": _l("该日的日报已报送。"),
    "zero_report_open_incidents": _l(
        "本市仍有 %(count)s 起在办事件，不能直接报送零报告；如确认无误，请勾选确认后再报送。"
    ),
    "username_empty": _l("用户名不能为空。"),
    "username_taken": _l("用户名“%(username)s”已被占用。"),
    "disable_self": _l("不能停用自己的账户。"),
    "password_too_short": _l("密码至少需要 %(min_length)s 个字符。"),
    "starts_in_past": _l("会商开始时间不能早于当前时间。"),
    "agenda_closed": _l("议题征集已截止。"),
    "offer_to_self": _l("城市不能向本市提供支援。"),
    "quantity_not_positive": _l("提供的数量须大于零。"),
    "drill_not_started": _l("演练尚未开始。"),
    "drill_ended": _l("演练已结束。"),
    "drill_without_injects": _l("没有情景注入的演练不能批准。"),
    "aid_request_not_open": _l("该支援请求已不再接受报价。"),
    "aid_entry_not_available": _l("该资源当前不可用。"),
    "aid_illegal_step": _l("该报价或承诺当前不能执行此步骤，请查看其最新状态。"),
    "aid_changed": _l("该承诺刚被其他人更改，请查看其最新状态。"),
    "aid_line_full": _l("该需求只要 %(requested)s，接受后将承诺 %(asked)s，超出需求。"),
    "aid_over_committed": _l("申请 %(asked)s，但该资源只剩 %(available)s 可用。"),
    "aid_double_booked": _l("该资源在重叠时段已被其他请求占用。"),
    "aid_order_number_missing": _l("授权须填写派遣令号。"),
    "aid_return_unbalanced": _l("归还、消耗与损失之和须等于派出数量 %(dispatched)s。"),
    "aid_nothing_to_offer": _l("无可报价数量：该需求已满足或本资源已无可用数量。"),
    "extension_not_later": _l("延长后的结束时间须晚于当前结束时间。"),
}

# What a contract's rule says, by pydantic's error type; "%(field)s" is the form's label.
VALIDATION_MESSAGES = {
    "missing": _l("请填写“%(field)s”。"),
    "string_too_short": _l("“%(field)s”至少需要 %(min_length)s 个字符。"),
    "string_too_long": _l("“%(field)s”最多 %(max_length)s 个字符。"),
    "too_short": _l("“%(field)s”至少需要 %(min_length)s 项。"),
    "too_long": _l("“%(field)s”最多 %(max_length)s 项。"),
    "greater_than": _l("“%(field)s”须大于 %(gt)s。"),
    "greater_than_equal": _l("“%(field)s”不能小于 %(ge)s。"),
    "less_than": _l("“%(field)s”须小于 %(lt)s。"),
    "less_than_equal": _l("“%(field)s”不能大于 %(le)s。"),
    "int_parsing": _l("“%(field)s”须为整数。"),
    "int_type": _l("“%(field)s”须为整数。"),
    "int_from_float": _l("“%(field)s”须为整数。"),
    "float_parsing": _l("“%(field)s”须为数字。"),
    "float_type": _l("“%(field)s”须为数字。"),
    "finite_number": _l("“%(field)s”须为数字。"),
    "datetime_parsing": _l("“%(field)s”不是有效的日期和时间。"),
    "datetime_type": _l("“%(field)s”不是有效的日期和时间。"),
    "datetime_from_date_parsing": _l("“%(field)s”不是有效的日期和时间。"),
    "timezone_aware": _l("“%(field)s”须带时区。"),
    "date_parsing": _l("“%(field)s”不是有效的日期。"),
    "date_type": _l("“%(field)s”不是有效的日期。"),
    "enum": _l("“%(field)s”的取值无效。"),
    "literal_error": _l("“%(field)s”的取值无效。"),
    "string_pattern_mismatch": _l("“%(field)s”的格式不正确。"),
    "string_type": _l("“%(field)s”须为文字。"),
    "bool_parsing": _l("“%(field)s”须为是或否。"),
    "uuid_parsing": _l("“%(field)s”不是有效的编号。"),
    "unknown_city": _l("“%(city)s”不是成员城市。"),
    "control_character": _l("“%(field)s”含有不允许的控制字符。"),
    "endex_before_startex": _l("演练结束时间须晚于开始时间。"),
    "drill_too_long": _l("演练从开始到结束最长 14 天。"),
}

# The contracts' own rules (raised as ValueError), by their English wording.
VALUE_ERRORS = {
    "a warning needs a colour (red, orange, yellow or blue)": _l("预警须选择颜色（红、橙、黄或蓝）。"),
    "address at least one city, or all neighbours": _l("请至少选择一个通报城市，或选择全部相邻城市。"),
    "addressed_cities lists a city twice": _l("通报城市有重复。"),
}

# Contract fields whose form field has another name, or that no form shows.
FIELD_LABELS = {
    "lat": _l("纬度"),
    "lon": _l("经度"),
    "latitude": _l("纬度"),
    "longitude": _l("经度"),
    "occurred_at": _l("发生时间"),
    "deadline": _l("时限"),
    "receipt_minutes": _l("回执时限（分钟）"),
    "receipt_deadline": _l("回执时限"),
    "affected_cities": _l("涉及城市"),
    "addressed_cities": _l("通报城市"),
    "title": _l("标题"),
    "body": _l("内容"),
    "text": _l("内容"),
    "description": _l("概况"),
    "location": _l("地点"),
    "area": _l("涉及区域"),
    "colour": _l("预警颜色"),
    "category": _l("类别"),
    "level": _l("级别"),
    "kind": _l("类型"),
}


def wants_json() -> bool:
    """Return whether the caller is an API client."""
    return request.path.startswith("/api/")


def error_response(
    status: int, code: str, message: str, details: object | None = None
) -> ResponseReturnValue:
    """Answer an error in the caller's format; the transaction is always rolled back first."""
    db.session.rollback()
    if wants_json():
        return jsonify(ErrorBody.of(code, message, details)), status
    return render_template("error.html", status=status, code=code, message=message), status


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> ResponseReturnValue:
        details = exc.details if isinstance(exc.details, (dict, list, str)) else None
        if not wants_json() and (exc.reason in REFUSALS or exc.status in HTML_MESSAGES):
            # The services speak English to API clients; a duty officer reads the page in their language.
            return error_response(exc.status, exc.code, refusal_text(exc))
        return error_response(exc.status, exc.code, exc.message, details)

    @app.errorhandler(ContractError)
    def _contract_error(exc: ContractError) -> ResponseReturnValue:
        problems = [{"location": p.location, "message": p.message} for p in exc.problems]
        return error_response(422, "invalid_input", str(exc), problems or None)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
        return error_response(400, "csrf_failed", _("表单已过期或来源不明，请刷新页面后重试。"))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        code = HTTP_CODES.get(status, "http_error")
        worded_by_us = exc.description != type(exc).description
        if not wants_json() and status in HTML_MESSAGES and not worded_by_us:
            # Werkzeug describes the failure in English; the page says it in the reader's language.
            return error_response(status, code, str(HTML_MESSAGES[status]))
        return error_response(status, code, exc.description or exc.name)

    @app.errorhandler(OverflowError)
    def _out_of_range(exc: OverflowError) -> ResponseReturnValue:
        # A number or date beyond what Python or the database holds (year 9999 at -14:00 is past
        # year 9999 in UTC) is the caller's mistake, wherever the check that should catch it is missing.
        return _too_big()

    @app.errorhandler(StatementError)
    def _statement_error(exc: StatementError) -> ResponseReturnValue:
        if isinstance(exc.orig, OverflowError):
            return _too_big()
        return _unexpected(exc)

    def _too_big() -> ResponseReturnValue:
        log.info("refused an out-of-range value on %s %s", request.method, request.path)
        return error_response(422, "invalid_input", _("数字或日期超出允许范围。"))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        if is_storage_full(exc):
            return storage_full()
        if _database_unreachable(exc):
            return database_unavailable(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", _("服务器内部错误，已记录。请稍后重试。"))


def _database_unreachable(exc: Exception) -> bool:
    """Tell whether the database could not be reached (down, restarting, its connection cut)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError) and any(
        sign in str(exc.orig)
        for sign in ("could not connect", "connection", "terminating", "the database system is")
    )


def database_unavailable(exc: Exception) -> ResponseReturnValue:
    """Refuse a request while the database is away; the pool reconnects when it is back."""
    log.error("refused %s %s: the database is unreachable: %s", request.method, request.path, exc)
    try:
        db.session.rollback()
    except DBAPIError:
        log.warning("the session's connection was already gone; nothing to roll back")
    headers = {"Retry-After": "5"}
    message = str(HTML_MESSAGES[503])
    if wants_json():
        return jsonify(ErrorBody.of("database_unavailable", message, None)), 503, headers
    if "_login_user" not in g:
        # The user could not be loaded either: the page must not try again while it renders.
        g._login_user = AnonymousUserMixin()
    page = render_template("error.html", status=503, code="database_unavailable", message=message)
    return page, 503, headers


def storage_full() -> ResponseReturnValue:
    """Refuse a write because the disk is full: nothing of it was kept, nothing earlier was lost."""
    log.error("refused %s %s: the disk is full", request.method, request.path)
    return error_response(507, "storage_full", str(HTML_MESSAGES[507]))


def refusal_text(exc: ServiceError) -> str:
    """Say a service's refusal in the reader's language where the hub knows it; else as worded."""
    if exc.reason in REFUSALS:
        values = exc.details if isinstance(exc.details, dict) else {}
        try:
            return str(REFUSALS[exc.reason]) % values
        except (KeyError, TypeError, ValueError):
            log.warning("refusal %s lacks the values its message names", exc.reason)
    if exc.status in (401, 403, 404):
        return str(HTML_MESSAGES[exc.status])
    return exc.message


def flash_refusal(exc: ServiceError) -> None:
    """Roll back and show a refused form's reason on the page; a forbidden action still answers 403."""
    db.session.rollback()
    if exc.status == 403:
        raise exc
    flash(refusal_text(exc), "error")


def field_label(name: str, form: FlaskForm | None = None, labels: Mapping[str, object] | None = None) -> str:
    """Name a contract's field as the page does: the given label, the form field's, the common one."""
    if labels and name in labels:
        return str(labels[name])
    if form is not None:
        field = getattr(form, name, None)
        label = getattr(field, "label", None)
        if label is not None and getattr(label, "text", None):
            return str(label.text)
    if name in FIELD_LABELS:
        return str(FIELD_LABELS[name])
    return name


def validation_text(
    error: ErrorDetails, form: FlaskForm | None = None, labels: Mapping[str, object] | None = None
) -> str:
    """Say one refused field of a contract in the reader's language, the field named by its label."""
    names = [str(p) for p in error["loc"] if isinstance(p, str)]
    field = field_label(names[0], form, labels) if names else ""
    context = error.get("ctx") or {}
    values: dict[str, object] = {
        key: int(value) if isinstance(value, float) and value.is_integer() else value
        for key, value in context.items()
        if isinstance(value, (str, int, float))
    }
    values["field"] = field
    kind = error["type"]
    if kind == "value_error":
        raised = context.get("error")
        wording = str(raised) if raised is not None else error["msg"].removeprefix("Value error, ")
        if wording in VALUE_ERRORS:
            return str(VALUE_ERRORS[wording])
    elif kind in VALIDATION_MESSAGES:
        try:
            return str(VALIDATION_MESSAGES[kind]) % values
        except (KeyError, TypeError, ValueError):
            log.warning("validation message %s lacks the values it names", kind)
    if field:
        return _("“%(field)s”输入有误：%(reason)s", field=field, reason=error["msg"])
    return _("输入有误：%(reason)s", reason=error["msg"])


def flash_validation(
    exc: ValidationError, form: FlaskForm | None = None, labels: Mapping[str, object] | None = None
) -> None:
    """Show each field a form's contract refused, with the reason, named by the form's labels."""
    for error in exc.errors():
        flash(validation_text(error, form, labels), "error")
