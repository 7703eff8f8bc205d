"""Forms of the mutual-aid pages (Flask-WTF, CSRF-protected); labels pass through the catalogue."""

from __future__ import annotations

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    DecimalField,
    FloatField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from contracts.resource_types import CATALOGUE


def type_choices() -> list[tuple[str, str]]:
    """Return the typing catalogue as (code, name in the reader's language) pairs."""
    english = str(get_locale()) == "en"
    return [(code, f"{row.name_en if english else row.name_zh} ({code})") for code, row in CATALOGUE.items()]


def type_names() -> dict[str, str]:
    """Return each type's name in the reader's language, by code."""
    english = str(get_locale()) == "en"
    return {code: row.name_en if english else row.name_zh for code, row in CATALOGUE.items()}


GRADES = [("", "—"), ("1", _l("重型")), ("2", _l("中型")), ("3", _l("轻型"))]


class ActionForm(FlaskForm):
    """A button that takes one step, with what some steps carry.

    Authorising carries the owner's order number; confirming a return its counts (returned +
    consumed + lost = dispatched); asking an extension the wanted end, and answering one either a
    grant until an end or a refusal (`grant` "1" or "0").
    """

    order_number = StringField(_l("派遣令号"), validators=[Optional(), Length(max=64)])
    returned = DecimalField(_l("归还"), places=3, validators=[Optional(), NumberRange(min=0)])
    consumed = DecimalField(_l("消耗"), places=3, validators=[Optional(), NumberRange(min=0)])
    lost = DecimalField(_l("损失"), places=3, validators=[Optional(), NumberRange(min=0)])
    new_end = DateTimeLocalField(_l("延长至"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    grant = HiddenField()


class CostForm(FlaskForm):
    """The actual cost the owning city enters after the return."""

    amount = DecimalField(_l("实际费用（元）"), places=2, validators=[DataRequired(), NumberRange(min=0)])
    note = StringField(_l("费用说明"), validators=[Optional(), Length(max=500)])


class EntryForm(FlaskForm):
    """Add or edit an entry of the city's registry."""

    external_id = StringField(_l("编号"), validators=[DataRequired(), Length(max=128)])
    type_code = SelectField(_l("资源类型"), validators=[DataRequired()])
    grade = SelectField(_l("等级"), choices=GRADES, validators=[Optional()])
    name = StringField(_l("名称"), validators=[DataRequired(), Length(max=200)])
    quantity = DecimalField(_l("数量"), places=3, validators=[DataRequired(), NumberRange(min=0)])
    lat = FloatField(_l("纬度"), validators=[DataRequired(), NumberRange(min=-90, max=90)])
    lon = FloatField(_l("经度"), validators=[DataRequired(), NumberRange(min=-180, max=180)])
    place = StringField(_l("存放地点"), validators=[Optional(), Length(max=200)])
    status = SelectField(
        _l("状态"),
        choices=[("available", _l("可用")), ("assigned", _l("已分配"))],
        validators=[DataRequired()],
    )
    contact_name = StringField(_l("联系人"), validators=[DataRequired(), Length(max=64)])
    contact_phone = StringField(_l("联系电话"), validators=[DataRequired(), Length(max=32)])
    personnel = IntegerField(_l("人员"), validators=[Optional(), NumberRange(min=0)])
    daily_rate = DecimalField(_l("日费率（元）"), places=2, validators=[Optional(), NumberRange(min=0)])
    self_sufficiency_hours = IntegerField(_l("自我保障小时"), validators=[Optional(), NumberRange(min=0)])
    mobilise_minutes = IntegerField(_l("集结分钟"), validators=[Optional(), NumberRange(min=0)])


class ImportForm(FlaskForm):
    """Import the registry from a CSV file."""

    file = FileField(_l("CSV 文件"), validators=[FileRequired()])


class RequestForm(FlaskForm):
    """Ask the other cities for help: one line (more through the API)."""

    title = StringField(_l("标题"), validators=[DataRequired(), Length(max=200)])
    type_code = SelectField(_l("资源类型"), validators=[DataRequired()])
    min_grade = SelectField(_l("最低等级"), choices=GRADES, validators=[Optional()])
    quantity = DecimalField(_l("数量"), places=3, validators=[DataRequired(), NumberRange(min=0.001)])
    needed_by = DateTimeLocalField(_l("需到时间"), format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    duration_hours = IntegerField(_l("使用时长（小时）"), validators=[DataRequired(), NumberRange(min=1)])
    report_to_place = StringField(_l("报到地点"), validators=[DataRequired(), Length(max=200)])
    report_to_lat = FloatField(_l("纬度"), validators=[DataRequired(), NumberRange(min=-90, max=90)])
    report_to_lon = FloatField(_l("经度"), validators=[DataRequired(), NumberRange(min=-180, max=180)])
    contact_name = StringField(_l("联系人"), validators=[DataRequired(), Length(max=64)])
    contact_phone = StringField(_l("联系电话"), validators=[DataRequired(), Length(max=32)])
    exercise = BooleanField(_l("演练"))


class OfferForm(FlaskForm):
    """Offer one of the city's entries for a line, as its stored package."""

    resource_id = SelectField(_l("本市资源"), coerce=int, validators=[DataRequired()])
