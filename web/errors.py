"""Turn every failure into a clear answer: JSON under /api/, a page elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, flash, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from pydantic import ValidationError
from sqlalchemy.exc import StatementError
from werkzeug.exceptions import HTTPException

from contracts.errors import ContractError
from hub.extensions import db
from hub.kernel.errors import ServiceError
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
}


HTML_MESSAGES = {
    401: _l("请先登录。"),
    403: _l("您无权执行此操作：只能为本市接报、续报和下达指令，观察员只能查看。"),
    404: _l("要查看的内容不存在或已被删除。"),
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
        if not wants_json() and exc.status in HTML_MESSAGES:
            # The services speak English to API clients; a duty officer reads the page in their language.
            return error_response(exc.status, exc.code, str(HTML_MESSAGES[exc.status]))
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
        return error_response(status, HTTP_CODES.get(status, "http_error"), exc.description or exc.name)

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
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", _("服务器内部错误，已记录。请稍后重试。"))


def flash_refusal(exc: ServiceError) -> None:
    """Roll back and show a refused form's reason on the page; a forbidden action still answers 403."""
    db.session.rollback()
    if exc.status == 403:
        raise exc
    flash(exc.message, "error")


def flash_validation(exc: ValidationError) -> None:
    """Show each field a form's contract refused, with the reason."""
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        flash(f"{where}: {error['msg']}" if where else error["msg"], "error")
