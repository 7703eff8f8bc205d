"""Joint drills in the UI: list, plan with an MSEL, control play, respond, read the AAR figures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from pydantic import ValidationError

from contracts.drills import (
    AarNarrative,
    CorrectiveActionCreate,
    DrillPlan,
    ExpectedAction,
    HotwashCreate,
    ObservationCreate,
)
from contracts.errors import ContractError
from hub.app import settings_of
from hub.drills import services as drills
from hub.drills.models import Drill, DrillStatus
from hub.drills.rules import DRILL_RATE_TARGET_PERCENT
from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.actors import Actor
from hub.kernel.errors import ServiceError
from hub.kernel.types import utcnow
from web.auth import current_actor
from web.drills.forms import (
    AarForm,
    ActionForm,
    CorrectiveActionForm,
    DrillForm,
    HotwashForm,
    MselForm,
    ObservationForm,
    SkipForm,
    rating_choices,
    scope_choices,
    type_choices,
)
from web.errors import flash_refusal, flash_validation
from web.i18n import city_choices
from web.kick import kick_flows

bp = Blueprint("drills", __name__, template_folder="templates")


@bp.get("/drills")
@login_required
def drill_list() -> ResponseReturnValue:
    """Show the drills, latest first."""
    return render_template("drills/drills.html", drills=drills.list_drills(db.session))


@bp.get("/drills/programme")
@login_required
def drill_programme() -> ResponseReturnValue:
    """Show each city's drills planned and held in a year against the 95 % drill rate."""
    zone = ZoneInfo(settings_of(current_app).timezone)
    year = request.args.get("year", type=int) or utcnow().astimezone(zone).year
    if not 2000 <= year <= 2100:
        abort(404)
    return render_template(
        "drills/programme.html",
        year=year,
        lines=drills.programme(db.session, year),
        cities={c.slug: c for c in city_service.all_cities(db.session)},
        target=DRILL_RATE_TARGET_PERCENT,
    )


def _objectives(text: str) -> list[dict[str, Any]]:
    """Read "O1 目标" lines, each followed by its "O1.1 任务" lines."""
    objectives: list[dict[str, Any]] = []
    for line in text.splitlines():
        ref, _sep, title = line.strip().partition(" ")
        if not ref:
            continue
        if "." in ref and objectives:
            objectives[-1]["critical_tasks"].append({"ref": ref, "title": title.strip()})
        else:
            objectives.append({"ref": ref, "title": title.strip(), "critical_tasks": []})
    return objectives


def _staff(text: str) -> list[dict[str, str]]:
    people = []
    for line in text.splitlines():
        name, _sep, city = line.strip().partition(" ")
        if name:
            people.append({"name": name, "city": city.strip()})
    return people


def _drill_form() -> DrillForm:
    form = DrillForm()
    form.drill_type.choices = type_choices()
    form.scope.choices = scope_choices()
    form.participating_cities.choices = city_choices(city_service.all_cities(db.session))
    return form


@bp.route("/drills/new", methods=["GET", "POST"])
@login_required
def drill_new() -> ResponseReturnValue:
    """Plan a drill controlled by the person's city, with its MSEL from a CSV file."""
    actor = current_actor()
    if current_user.role.value != "coordinator":
        abort(403)
    form = _drill_form()
    if form.validate_on_submit():
        zone = ZoneInfo(settings_of(current_app).timezone)
        startex = form.startex.data.replace(tzinfo=zone)
        own = city_service.by_id(db.session, current_user.city_id)
        try:
            plan = DrillPlan.model_validate(
                {
                    "name": form.name.data,
                    "drill_type": form.drill_type.data,
                    "scope": form.scope.data,
                    "scenario": form.scenario.data or "",
                    "plans": [p.strip() for p in (form.plans.data or "").splitlines() if p.strip()],
                    "controlling_city": own.slug,
                    "participating_cities": list(form.participating_cities.data or ()),
                    "objectives": _objectives(form.objectives.data or ""),
                    "startex": startex,
                    "endex": startex + timedelta(minutes=form.duration_minutes.data or 0),
                    "controllers": [{"name": current_user.username, "city": own.slug}],
                    "evaluators": _staff(form.evaluators.data or ""),
                }
            )
            drill = drills.create(db.session, actor, plan, time_scale=float(form.time_scale.data or 1))
            upload = form.msel.data
            if upload:
                drills.import_msel(db.session, actor, drill.id, upload.read())
        except ValidationError as exc:
            db.session.rollback()
            flash_validation(exc, form)
        except ContractError as exc:
            db.session.rollback()
            _flash_msel(exc)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            flash(_("演练已创建（草案）。"), "success")
            return redirect(url_for("drills.drill_detail", drill_id=drill.id))
    return render_template("drills/drill_new.html", form=form), 422 if form.errors else 200


def _flash_msel(exc: ContractError) -> None:
    flash(_("情景事件清单未导入："), "error")
    for line in drills.msel_error_lines(exc):
        flash(line, "error")


def _view(drill: Drill) -> dict[str, Any]:
    actor = current_actor()
    controller = drills.is_controller(actor, drill)
    sees = drills.sees_expectations(actor, drill)
    ended = drill.status == DrillStatus.ENDED
    rows = [
        row
        for row in drill.injects
        if sees or (row.city_id == current_user.city_id and row.delivered_at is not None)
    ]
    read = set()
    if drill.status in DrillStatus.IN_PLAY:
        read = {r.number for r in drill.injects} - {
            r.number
            for r in drills.unread_notices(db.session, current_user.city_id)
            if r.drill_id == drill.id
        }
    return {
        "drill": drill,
        "plan": drills.plan_of(drill),
        "rows": rows,
        "controller": controller,
        "sees": sees,
        "ended": ended,
        "read": read,
        "measures": {m.number: m for m in drills.measures(db.session, drill)} if sees else {},
        "clock": drills.clock_of(drill) if drill.started_at else None,
        "now": utcnow(),
        "action": ActionForm(),
        "skip_form": SkipForm(),
        "msel_form": MselForm(),
        "evaluates": drills.is_evaluator(actor, drill) or controller,
        "observation_form": _observation_form(),
        "observations": drills.observations(db.session, drill.id) if sees else [],
        "corrective_actions": drills.corrective_actions(db.session, drill) if ended else [],
        "corrective_form": _corrective_form(drill),
        "cities": {c.slug: c for c in city_service.all_cities(db.session)},
        "hotwash": drills.hotwash_of(db.session, drill.id) if ended else [],
        "hotwash_form": HotwashForm(),
        "plays": own_slug(actor) in drills.plan_of(drill).participating_cities,
        **_aar_view(actor, drill),
    }


def _aar_view(actor: Actor, drill: Drill) -> dict[str, Any]:
    """Return what the page shows of the report's narrative, and the editor for its evaluators."""
    if drill.aar is None:
        return {"report": None}
    report = drills.aar_report(drill)
    narrative = drills.aar_narrative(drill)
    return {
        "report": report,
        "narrative": narrative,
        "lead": drills.lead_evaluator(drill),
        "writes_aar": drills.writes_aar(actor, drill) and not report.is_final,
        "finalises": drills.is_lead_evaluator(actor, drill) and not report.is_final,
        "aar_form": AarForm(base_revision=str(narrative.base_revision), summary=narrative.summary),
        "rating_choices": rating_choices(),
        "objective_titles": {o.ref: o.title for o in drills.plan_of(drill).objectives},
    }


def own_slug(actor: Actor) -> str | None:
    """Return the slug of the actor's city, if it has one."""
    return city_service.by_id(db.session, actor.city_id).slug if actor.city_id is not None else None


def _corrective_form(drill: Drill) -> CorrectiveActionForm:
    plan = drills.plan_of(drill)
    form = CorrectiveActionForm()
    members = {c.slug: c for c in city_service.all_cities(db.session)}
    form.owner_city.choices = city_choices([members[s] for s in plan.participating_cities if s in members])
    form.plan.choices = [(p, p) for p in plan.plans]
    form.objective.choices = [("", "—")] + [(o.ref, f"{o.ref} {o.title}") for o in plan.objectives]
    return form


def _observation_form() -> ObservationForm:
    form = ObservationForm()
    form.rating.choices = rating_choices()
    return form


@bp.get("/drills/<int:drill_id>")
@login_required
def drill_detail(drill_id: int) -> ResponseReturnValue:
    """Show a drill: its plan, the inject table and its states, controls for controllers, the AAR."""
    drill = drills.get(db.session, drill_id)
    return render_template("drills/drill_detail.html", **_view(drill))


@bp.post("/drills/<int:drill_id>/msel")
@login_required
def drill_msel(drill_id: int) -> ResponseReturnValue:
    """Replace a draft drill's MSEL with an uploaded CSV file."""
    form = MselForm()
    if form.validate_on_submit():
        try:
            drills.import_msel(db.session, current_actor(), drill_id, form.msel.data.read())
        except ContractError as exc:
            db.session.rollback()
            _flash_msel(exc)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            flash(_("情景事件清单已导入。"), "success")
    return redirect(url_for("drills.drill_detail", drill_id=drill_id))


@bp.get("/drills/<int:drill_id>/msel.csv")
@login_required
def drill_msel_export(drill_id: int) -> ResponseReturnValue:
    """Download the MSEL as CSV (controllers and evaluators, or anyone after ENDEX)."""
    drill = drills.get(db.session, drill_id)
    if not drills.sees_expectations(current_actor(), drill):
        abort(403)
    return Response(
        drills.export_msel(drill, "csv"),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=drill-{drill.id}-msel.csv"},
    )


def _reported(drill_id: int) -> Drill:
    drill = drills.get(db.session, drill_id)
    if drill.status != DrillStatus.ENDED or drill.aar is None:
        abort(404)
    return drill


@bp.get("/drills/<int:drill_id>/aar.md")
@login_required
def drill_aar_markdown(drill_id: int) -> ResponseReturnValue:
    """Download the after-action report as Markdown (after ENDEX, once drafted)."""
    drill = _reported(drill_id)
    return Response(
        drills.aar_markdown(db.session, drill),
        mimetype="text/markdown",
        headers={"Content-Disposition": f"attachment; filename=drill-{drill.id}-aar.md"},
    )


@bp.get("/drills/<int:drill_id>/aar.csv")
@login_required
def drill_aar_csv(drill_id: int) -> ResponseReturnValue:
    """Download the report's per-city response figures as CSV."""
    drill = _reported(drill_id)
    return Response(
        drills.aar_csv(drill),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=drill-{drill.id}-aar.csv"},
    )


# The report's refusals, in the reader's language (the service words them in English for the API).
_AAR_REFUSALS = {
    "aar_final": _l("评估报告已定稿，不能再修改。"),
    "stale_revision": _l("评估报告在您打开后已被他人保存为新版本，请刷新页面后重新修改。"),
    "aar_empty": _l("评估结论尚未撰写，不能定稿。"),
}


def _aar_refusal(exc: ServiceError) -> None:
    if exc.reason in _AAR_REFUSALS:
        db.session.rollback()
        flash(str(_AAR_REFUSALS[exc.reason]), "error")
    else:
        flash_refusal(exc)


@bp.post("/drills/<int:drill_id>/aar")
@login_required
def drill_aar_save(drill_id: int) -> ResponseReturnValue:
    """Save the report's narrative (the drill's evaluators): a new revision when something changed."""
    drill = drills.get(db.session, drill_id)
    form = AarForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("drills.drill_detail", drill_id=drill_id) + "#aar")
    try:
        base = int(form.base_revision.data or "")
    except ValueError:
        abort(400)
    try:
        data = AarNarrative.model_validate(
            {
                "base_revision": base,
                "summary": form.summary.data or "",
                "objectives": [
                    {
                        "objective": o.ref,
                        "rating": request.form.get(f"rating-{o.ref}") or None,
                        "strengths": request.form.get(f"strengths-{o.ref}", ""),
                        "improvements": request.form.get(f"improvements-{o.ref}", ""),
                    }
                    for o in drills.plan_of(drill).objectives
                ],
            }
        )
        row = drills.save_aar(db.session, current_actor(), drill_id, data)
    except ValidationError as exc:
        flash_validation(exc, form)
    except ServiceError as exc:
        _aar_refusal(exc)
    else:
        db.session.commit()
        if row is None:
            flash(_("内容未改变，未生成新版本。"), "success")
        else:
            flash(_("评估报告已保存（第 %(number)d 版）。", number=row.number), "success")
    return redirect(url_for("drills.drill_detail", drill_id=drill_id) + "#aar")


@bp.post("/drills/<int:drill_id>/aar/finalise")
@login_required
def drill_aar_finalise(drill_id: int) -> ResponseReturnValue:
    """Finalise the report (the lead evaluator only); it is frozen from then on."""
    if ActionForm().validate_on_submit():
        try:
            drills.finalise_aar(db.session, current_actor(), drill_id)
        except ServiceError as exc:
            _aar_refusal(exc)
        else:
            db.session.commit()
            flash(_("评估报告已定稿。"), "success")
    return redirect(url_for("drills.drill_detail", drill_id=drill_id) + "#aar")


_CONTROLS = {
    "approve": drills.approve,
    "start": drills.start_now,
    "pause": drills.pause,
    "resume": drills.resume,
    "end": drills.end_now,
}


@bp.post("/drills/<int:drill_id>/<any(approve, start, pause, resume, end):control>")
@login_required
def drill_control(drill_id: int, control: str) -> ResponseReturnValue:
    """Approve, start, pause, resume or end a drill (controllers only)."""
    if ActionForm().validate_on_submit():
        try:
            _CONTROLS[control](db.session, current_actor(), drill_id)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
    return redirect(url_for("drills.drill_detail", drill_id=drill_id))


@bp.post("/drills/<int:drill_id>/injects/<int:number>/skip")
@login_required
def inject_skip(drill_id: int, number: int) -> ResponseReturnValue:
    """Skip an inject with a reason (controllers only)."""
    form = SkipForm()
    if form.validate_on_submit():
        try:
            drills.skip(db.session, current_actor(), drill_id, number, form.reason.data or "")
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
    else:
        flash(_("请填写跳过原因。"), "error")
    return redirect(url_for("drills.drill_detail", drill_id=drill_id))


@bp.post("/drills/<int:drill_id>/injects/<int:number>/send")
@login_required
def inject_send(drill_id: int, number: int) -> ResponseReturnValue:
    """Send an inject now, by hand (controllers only)."""
    if ActionForm().validate_on_submit():
        try:
            drills.send_now(db.session, current_actor(), drill_id, number)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
    return redirect(url_for("drills.drill_detail", drill_id=drill_id))


@bp.post("/drills/<int:drill_id>/injects/<int:number>/read")
@login_required
def inject_read(drill_id: int, number: int) -> ResponseReturnValue:
    """Mark an exercise notice read for the person's city (阅知)."""
    if ActionForm().validate_on_submit():
        try:
            drills.record_response(
                db.session, current_actor(), drill_id, ExpectedAction.NOTICE_READ, number=number
            )
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
    return redirect(url_for("drills.drill_detail", drill_id=drill_id))


@bp.post("/drills/<int:drill_id>/observations")
@login_required
def drill_observation(drill_id: int) -> ResponseReturnValue:
    """Record an evaluator's observation (evaluators and controllers)."""
    form = _observation_form()

    def act() -> None:
        objective, _sep, task = (form.task.data or "").strip().partition(" ")
        data = ObservationCreate(
            objective=objective or None,
            critical_task=task.strip() or None,
            rating=form.rating.data or None,
            text=form.text.data or "",
            observed_at=utcnow(),
        )
        drills.add_observation(db.session, current_actor(), drill_id, data)

    _submit(form, act, _("观察记录已保存。"))
    return redirect(url_for("drills.drill_detail", drill_id=drill_id))


@bp.post("/drills/<int:drill_id>/corrective-actions")
@login_required
def drill_corrective_action(drill_id: int) -> ResponseReturnValue:
    """Open a corrective action after ENDEX (evaluators and controllers), followed as an action item."""
    drill = drills.get(db.session, drill_id)
    form = _corrective_form(drill)

    def act() -> None:
        data = CorrectiveActionCreate(
            owner_city=form.owner_city.data or "",
            title=form.title.data or "",
            detail=form.detail.data or "",
            due_on=form.due_on.data,
            plan=form.plan.data or "",
            objective=form.objective.data or None,
        )
        drills.add_corrective_action(db.session, current_actor(), drill_id, data)

    _submit(form, act, _("整改事项已立项督办。"))
    return redirect(url_for("drills.drill_detail", drill_id=drill_id) + "#corrective-actions")


@bp.post("/drills/<int:drill_id>/hotwash")
@login_required
def drill_hotwash(drill_id: int) -> ResponseReturnValue:
    """Fill the hot-wash form after ENDEX (people of the participating cities, once each)."""
    form = HotwashForm()

    def act() -> None:
        data = HotwashCreate(
            self_rating=int(form.self_rating.data or 0),
            went_well=form.went_well.data or "",
            to_improve=form.to_improve.data or "",
        )
        drills.add_hotwash(db.session, current_actor(), drill_id, data)

    _submit(form, act, _("自评已提交，谢谢。"))
    return redirect(url_for("drills.drill_detail", drill_id=drill_id) + "#hotwash")


def _submit(form: FlaskForm, act: Callable[[], None], done: str) -> None:
    """Run a form's one service call: commit and say `done`, or show why it was refused."""
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return
    try:
        act()
    except ValidationError as exc:
        flash_validation(exc, form)
    except ServiceError as exc:
        flash_refusal(exc)
    else:
        db.session.commit()
        flash(done, "success")
