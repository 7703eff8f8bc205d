"""The duty roster (值班表) and the contact directory (通讯录): pages, CSV import and export."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from hub.duty import services as duty
from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.errors import ServiceError
from hub.kernel.types import utcnow
from web.auth import current_actor
from web.duty.forms import CsvImportForm
from web.errors import flash_refusal

bp = Blueprint("duty", __name__, template_folder="templates")

ROSTER_DAYS = 14
MAX_UPLOAD = 512 * 1024


def _may_edit() -> bool:
    return current_user.role.value in ("coordinator", "admin")


def _uploaded_text(form: CsvImportForm) -> str | None:
    """Return the uploaded file as text, or flash why it cannot be read."""
    raw = form.file.data.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        flash(_("文件过大（上限 512 KB）。"), "error")
        return None
    try:
        return str(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        flash(_("文件须为 UTF-8 编码的 CSV。"), "error")
        return None


def _import(form: CsvImportForm, load: str) -> bool:
    """Run one import from the form; flash the outcome; return whether it was taken."""
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return False
    text = _uploaded_text(form)
    if text is None:
        return False
    try:
        count = (duty.import_roster if load == "roster" else duty.import_directory)(
            db.session, current_actor(), text
        )
    except ServiceError as exc:
        flash_refusal(exc)
        return False
    db.session.commit()
    flash(_("已导入 %(count)d 行。", count=count), "success")
    return True


@bp.route("/duty", methods=["GET", "POST"])
@login_required
def roster_page() -> ResponseReturnValue:
    """Show who is on duty now in every city and the city's roster for two weeks; import a CSV."""
    form = CsvImportForm()
    if request.method == "POST":
        if not _may_edit():
            abort(403)
        if _import(form, "roster"):
            return redirect(url_for("duty.roster_page"))
    now = utcnow()
    day, _shift = duty.shift_at(now)
    status = 422 if request.method == "POST" else 200
    return render_template(
        "duty/roster.html",
        form=form,
        may_edit=_may_edit(),
        on_duty=duty.on_duty(db.session, now),
        duty_shift=duty.shift_at(now),
        all_cities=city_service.all_cities(db.session),
        roster=duty.roster(db.session, current_user.city_id, day, ROSTER_DAYS),
    ), status


@bp.get("/duty/roster.csv")
@login_required
def roster_csv() -> ResponseReturnValue:
    """Export the city's roster (from today, two weeks, or `days`) in the columns an import reads."""
    day, _shift = duty.shift_at(utcnow())
    days = min(max(request.args.get("days", ROSTER_DAYS, type=int) or ROSTER_DAYS, 1), 366)
    city = request.args.get("city") or current_user.city.slug
    text = duty.export_roster(db.session, city, day, days)
    return _csv_response(text, f"roster-{city}-{day.isoformat()}.csv")


@bp.route("/directory", methods=["GET", "POST"])
@login_required
def directory_page() -> ResponseReturnValue:
    """Show the region's contact directory; the city's coordinators import theirs as CSV."""
    form = CsvImportForm()
    if request.method == "POST":
        if not _may_edit():
            abort(403)
        if _import(form, "directory"):
            return redirect(url_for("duty.directory_page"))
    city = request.args.get("city") or None
    contacts = duty.directory(db.session, city_service.by_slug(db.session, city).id if city else None)
    return render_template(
        "duty/directory.html",
        form=form,
        may_edit=_may_edit(),
        contacts=contacts,
        all_cities=city_service.all_cities(db.session),
        city_filter=city,
    ), 422 if request.method == "POST" else 200


@bp.get("/directory.csv")
@login_required
def directory_csv() -> ResponseReturnValue:
    """Export the directory: one city's (`city`) in the import's columns, or the region's."""
    city = request.args.get("city") or None
    return _csv_response(duty.export_directory(db.session, city), f"directory-{city or 'huaihai'}.csv")


def _csv_response(text: str, filename: str) -> Response:
    # A byte-order mark so that spreadsheet programs read the Chinese names as UTF-8.
    return Response(
        "\ufeff" + text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
