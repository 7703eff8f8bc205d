"""Forms of the vehicles pages (Flask-WTF, CSRF-protected); labels pass through the catalogue."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DecimalField,
    IntegerField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional


def command_kind_choices() -> list[tuple[str, str]]:
    """Return the commands a vehicle understands, with their translated labels."""
    return [
        ("goto", str(_l("前往指定地点"))),
        ("set_status", str(_l("设置状态"))),
        ("report_position", str(_l("立即上报位置"))),
        ("open_video", str(_l("打开视频"))),
    ]


def vehicle_state_choices() -> list[tuple[str, str]]:
    """Return the business states of a vehicle with their translated labels."""
    return [
        ("standby", str(_l("待命"))),
        ("en_route", str(_l("出动途中"))),
        ("on_scene", str(_l("到达现场"))),
        ("returning", str(_l("返回途中"))),
        ("out_of_service", str(_l("停用"))),
    ]


class CommandForm(FlaskForm):
    """Send a command to a vehicle; which fields matter depends on the kind."""

    kind = SelectField(_l("指令"), validators=[DataRequired()])
    latitude = DecimalField(_l("纬度"), places=5, validators=[Optional(), NumberRange(-90, 90)])
    longitude = DecimalField(_l("经度"), places=5, validators=[Optional(), NumberRange(-180, 180)])
    note = StringField(_l("说明"), validators=[Optional(), Length(max=200)])
    status = SelectField(_l("状态"), validators=[Optional()])
    url = StringField(_l("视频地址"), validators=[Optional(), Length(max=500)])
    ttl_minutes = IntegerField(
        _l("有效期（分钟）"), default=10, validators=[DataRequired(), NumberRange(1, 1440)]
    )


class VehicleForm(FlaskForm):
    """Register a vehicle (its broker password is shown once)."""

    city = SelectField(_l("所属城市"), validators=[DataRequired()])
    code = StringField(_l("车辆编号"), validators=[DataRequired(), Length(max=64)])
    name = StringField(_l("车辆名称"), validators=[Optional(), Length(max=64)])
