"""Forms of the drill pages (Flask-WTF, CSRF-protected); labels pass through the catalogue."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    DateField,
    DateTimeLocalField,
    DecimalField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from contracts.drills import DrillScope, DrillType
from web.incidents.forms import plausible_time


def type_choices() -> list[tuple[str, str]]:
    """Return the drill types with the names planners use."""
    return [
        (DrillType.TABLETOP.value, str(_l("桌面推演"))),
        (DrillType.FUNCTIONAL.value, str(_l("功能演练"))),
        (DrillType.FULL_SCALE.value, str(_l("全面演练"))),
    ]


def scope_choices() -> list[tuple[str, str]]:
    """Return single (单项) and combined (综合)."""
    return [(DrillScope.SINGLE.value, str(_l("单项演练"))), (DrillScope.COMBINED.value, str(_l("综合演练")))]


class DrillForm(FlaskForm):
    """Plan a drill: the plan and, optionally, its MSEL as a CSV file."""

    name = StringField(_l("演练名称"), validators=[DataRequired(), Length(max=200)])
    drill_type = SelectField(_l("演练类型"), validators=[DataRequired()])
    scope = SelectField(_l("演练形式"), validators=[DataRequired()])
    scenario = TextAreaField(_l("情景概述"), validators=[Optional(), Length(max=10000)])
    plans = TextAreaField(_l("检验的预案（每行一个）"), validators=[DataRequired(), Length(max=4000)])
    participating_cities = SelectMultipleField(_l("参演城市"), validators=[DataRequired()])
    objectives = TextAreaField(
        _l("演练目标与关键任务（每行一项：“O1 目标”，关键任务写作“O1.1 任务”）"),
        validators=[DataRequired(), Length(max=10000)],
    )
    evaluators = TextAreaField(
        _l("评估员（每行：用户名 城市代码）"), validators=[Optional(), Length(max=4000)]
    )
    startex = DateTimeLocalField(
        _l("开始时间（STARTEX）"), format="%Y-%m-%dT%H:%M", validators=[DataRequired(), plausible_time]
    )
    duration_minutes = IntegerField(
        _l("演练时长（分钟）"), default=120, validators=[DataRequired(), NumberRange(1, 14 * 24 * 60)]
    )
    time_scale = DecimalField(
        _l("时间倍率"), default=1, places=None, validators=[DataRequired(), NumberRange(1, 3600)]
    )
    msel = FileField(_l("情景事件清单（MSEL，CSV）"))


class MselForm(FlaskForm):
    """Upload an MSEL (CSV) to a draft drill."""

    msel = FileField(_l("情景事件清单（MSEL，CSV）"), validators=[FileRequired()])


class SkipForm(FlaskForm):
    """Skip an inject, with a reason."""

    reason = StringField(_l("跳过原因"), validators=[DataRequired(), Length(max=500)])


def rating_choices() -> list[tuple[str, str]]:
    """Return the HSEEP ratings of a critical task, with none first."""
    return [
        ("", "—"),
        ("P", str(_l("顺利完成"))),
        ("S", str(_l("基本完成，存在一些问题"))),
        ("M", str(_l("勉强完成，存在重大问题"))),
        ("U", str(_l("未能完成"))),
    ]


class ObservationForm(FlaskForm):
    """An evaluator's observation, on a critical task ("O1 O1.1") with a rating, or in general."""

    task = StringField(_l("目标与关键任务（如“O1 O1.1”，可空）"), validators=[Optional(), Length(max=40)])
    rating = SelectField(_l("评定"), validators=[Optional()])
    text = TextAreaField(_l("观察记录"), validators=[DataRequired(), Length(max=4000)])


class ActionForm(FlaskForm):
    """A control button (approve, start, pause, resume, end, send, read): CSRF only."""


class CorrectiveActionForm(FlaskForm):
    """A corrective action after ENDEX: owner city, due day, the plan it revises, what to do."""

    title = StringField(_l("整改事项"), validators=[DataRequired(), Length(max=200)])
    owner_city = SelectField(_l("责任城市"), validators=[DataRequired()])
    due_on = DateField(_l("完成时限"), validators=[DataRequired()])
    plan = SelectField(_l("修订的预案"), validators=[DataRequired()])
    objective = SelectField(_l("对应目标"), validators=[Optional()])
    detail = TextAreaField(_l("整改要求"), validators=[Optional(), Length(max=10000)])


class HotwashForm(FlaskForm):
    """A player's hot wash after ENDEX: a self-rating and two short answers."""

    self_rating = SelectField(
        _l("本市表现自评"),
        choices=[("5", "5"), ("4", "4"), ("3", "3"), ("2", "2"), ("1", "1")],
        validators=[DataRequired()],
    )
    went_well = TextAreaField(_l("做得好的"), validators=[DataRequired(), Length(max=2000)])
    to_improve = TextAreaField(_l("需要改进的"), validators=[DataRequired(), Length(max=2000)])


class AarForm(FlaskForm):
    """The after-action report's narrative: the summary here; each objective's rating, strengths
    and areas for improvement come as `rating-<ref>`, `strengths-<ref>` and `improvements-<ref>`,
    one set per objective of the drill, read by the view."""

    base_revision = HiddenField(validators=[DataRequired()])
    summary = TextAreaField(_l("总体评价"), validators=[Optional(), Length(max=20000)])
