"""Forms of the incident pages (Flask-WTF, CSRF-protected); labels pass through the catalogue."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    FileField,
    FloatField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from contracts.common import IncidentCategory, ReportKind


def category_choices() -> list[tuple[str, str]]:
    """Return the incident categories with their translated labels."""
    return [
        (IncidentCategory.NATURAL.value, str(_l("自然灾害"))),
        (IncidentCategory.ACCIDENT.value, str(_l("事故灾难"))),
        (IncidentCategory.PUBLIC_HEALTH.value, str(_l("公共卫生事件"))),
        (IncidentCategory.SOCIAL_SECURITY.value, str(_l("社会安全事件"))),
    ]


def level_choices() -> list[tuple[str, str]]:
    """Return the incident levels with their translated labels, most severe first."""
    return [
        ("I", str(_l("I 级 特别重大"))),
        ("II", str(_l("II 级 重大"))),
        ("III", str(_l("III 级 较大"))),
        ("IV", str(_l("IV 级 一般"))),
    ]


def plausible_time(form: FlaskForm, field: DateTimeLocalField) -> None:
    """Refuse a time no incident has (year 1, year 9999), which no time zone can even convert."""
    if field.data is not None and not 1970 <= field.data.year <= 2100:
        raise ValidationError(_l("发生时间须在 1970 年至 2100 年之间。"))


class IncidentForm(FlaskForm):
    """Record a new incident."""

    title = StringField(_l("事件标题"), validators=[DataRequired(), Length(max=200)])
    category = SelectField(_l("事件类别"), validators=[DataRequired()])
    level = SelectField(_l("事件级别"), validators=[DataRequired()], default="IV")
    occurred_at = DateTimeLocalField(
        _l("发生时间"), format="%Y-%m-%dT%H:%M", validators=[DataRequired(), plausible_time]
    )
    # The fieldset around the place is 发生地点; this is its address line.
    location = StringField(_l("地址"), validators=[Optional(), Length(max=200)])
    latitude = FloatField(_l("纬度"), validators=[Optional(), NumberRange(min=-90, max=90)])
    longitude = FloatField(_l("经度"), validators=[Optional(), NumberRange(min=-180, max=180)])
    affected_cities = SelectMultipleField(_l("涉及城市"), validators=[DataRequired()])
    description = TextAreaField(_l("事件概况"), validators=[Optional(), Length(max=10000)])
    exercise = BooleanField(_l("演练（非真实事件）"))
    source = StringField(_l("信息来源"), validators=[Optional(), Length(max=200)])
    nature = TextAreaField(_l("事件性质"), validators=[Optional(), Length(max=4000)])
    extent = TextAreaField(_l("影响范围"), validators=[Optional(), Length(max=4000)])
    trend = TextAreaField(_l("发展趋势"), validators=[Optional(), Length(max=4000)])
    measures = TextAreaField(_l("已采取措施"), validators=[Optional(), Length(max=4000)])
    deaths = IntegerField(_l("死亡"), validators=[Optional(), NumberRange(min=0, max=10_000_000)])
    injured = IntegerField(_l("受伤"), validators=[Optional(), NumberRange(min=0, max=10_000_000)])
    missing = IntegerField(_l("失踪"), validators=[Optional(), NumberRange(min=0, max=10_000_000)])


def report_kind_choices() -> list[tuple[str, str]]:
    """Return the report kinds a follow-up may have."""
    return [
        (ReportKind.FOLLOW_UP.value, str(_l("续报"))),
        (ReportKind.FINAL.value, str(_l("终报（办结）"))),
    ]


class FollowUpForm(FlaskForm):
    """Add a follow-up or final report."""

    kind = SelectField(_l("报告类型"), default=ReportKind.FOLLOW_UP.value)
    body = TextAreaField(_l("报告内容"), validators=[DataRequired(), Length(max=10000)])
    location = StringField(_l("地址"), validators=[Optional(), Length(max=200)])
    latitude = FloatField(_l("纬度"), validators=[Optional(), NumberRange(min=-90, max=90)])
    longitude = FloatField(_l("经度"), validators=[Optional(), NumberRange(min=-180, max=180)])
    extent = TextAreaField(_l("影响范围"), validators=[Optional(), Length(max=4000)])
    trend = TextAreaField(_l("发展趋势"), validators=[Optional(), Length(max=4000)])
    measures = TextAreaField(_l("已采取措施"), validators=[Optional(), Length(max=4000)])
    deaths = IntegerField(_l("死亡"), validators=[Optional(), NumberRange(min=0, max=10_000_000)])
    injured = IntegerField(_l("受伤"), validators=[Optional(), NumberRange(min=0, max=10_000_000)])
    missing = IntegerField(_l("失踪"), validators=[Optional(), NumberRange(min=0, max=10_000_000)])


class AttachmentForm(FlaskForm):
    """Attach a photo or document to an incident."""

    file = FileField(_l("照片或文件"), validators=[DataRequired()])


class IncidentEditForm(FlaskForm):
    """Change an incident's level, status or affected cities."""

    level = SelectField(_l("事件级别"), validators=[DataRequired()])
    status = SelectField(_l("状态"), validators=[DataRequired()])
    affected_cities = SelectMultipleField(_l("涉及城市"), validators=[DataRequired()])


def status_choices() -> list[tuple[str, str]]:
    """Return the incident statuses with their translated labels."""
    return [("reported", str(_l("已接报"))), ("responding", str(_l("处置中"))), ("closed", str(_l("已结束")))]


class DispatchForm(FlaskForm):
    """Send one of the city's vehicles to the incident's place."""

    vehicle = SelectField(_l("车辆"), coerce=int, validators=[DataRequired()])
    note = StringField(_l("给车组的说明"), validators=[Optional(), Length(max=500)])


class AreaForm(FlaskForm):
    """Watch a circle around the incident's place."""

    radius_m = IntegerField(
        _l("半径（米）"), default=1000, validators=[DataRequired(), NumberRange(min=100, max=50_000)]
    )
