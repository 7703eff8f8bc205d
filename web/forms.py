"""HTML forms (Flask-WTF, CSRF-protected); labels pass through the catalogue."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    DecimalField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from contracts.common import IncidentCategory, ReportKind


class LoginForm(FlaskForm):
    """Log-in form."""

    username = StringField(_l("用户名"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("密码"), validators=[DataRequired(), Length(max=256)])


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


class IncidentForm(FlaskForm):
    """Record a new incident."""

    title = StringField(_l("事件标题"), validators=[DataRequired(), Length(max=200)])
    category = SelectField(_l("事件类别"), validators=[DataRequired()])
    level = SelectField(_l("事件级别"), validators=[DataRequired()], default="IV")
    occurred_at = DateTimeLocalField(_l("发生时间"), format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    location = StringField(_l("发生地点"), validators=[Optional(), Length(max=200)])
    affected_cities = SelectMultipleField(_l("涉及城市"), validators=[DataRequired()])
    description = TextAreaField(_l("事件概况"), validators=[Optional(), Length(max=10000)])
    exercise = BooleanField(_l("演练（非真实事件）"))


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


class UserForm(FlaskForm):
    """Create a user (administrators)."""

    username = StringField(_l("用户名"), validators=[DataRequired(), Length(max=64)])
    display_name = StringField(_l("姓名"), validators=[Optional(), Length(max=64)])
    password = PasswordField(_l("初始密码"), validators=[DataRequired(), Length(min=10, max=256)])
    city = SelectField(_l("所属城市"), validators=[DataRequired()])
    role = SelectField(_l("角色"), validators=[DataRequired()])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that change state."""


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


def colour_choices() -> list[tuple[str, str]]:
    """Return the warning colours, most severe first."""
    return [
        ("red", str(_l("红色"))),
        ("orange", str(_l("橙色"))),
        ("yellow", str(_l("黄色"))),
        ("blue", str(_l("蓝色"))),
    ]


class BulletinForm(FlaskForm):
    """Issue a bulletin (信息通报) or warning (预警)."""

    kind = SelectField(_l("类型"), choices=[("bulletin", _l("信息通报")), ("warning", _l("预警"))])
    colour = SelectField(_l("预警颜色"), validators=[Optional()])
    category = SelectField(_l("事件类别"), validators=[DataRequired()])
    title = StringField(_l("标题"), validators=[DataRequired(), Length(max=200)])
    area = StringField(_l("涉及区域"), validators=[DataRequired(), Length(max=200)])
    text = TextAreaField(_l("内容"), validators=[DataRequired(), Length(max=10000)])
    addressed_cities = SelectMultipleField(_l("通报城市"), validators=[Optional()])
    all_neighbours = BooleanField(_l("全部相邻城市"))
    scope = SelectField(
        _l("范围"), choices=[("public", _l("公开")), ("restricted", _l("限定（仅通报对象可见）"))]
    )
    receipt_minutes = IntegerField(
        _l("回执时限（分钟）"), default=30, validators=[DataRequired(), NumberRange(1, 7 * 24 * 60)]
    )
    exercise = BooleanField(_l("演练（非真实事件）"))


class ReceiptForm(FlaskForm):
    """Acknowledge a bulletin (签收)."""


class VerificationForm(FlaskForm):
    """Send a verification request (核报)."""

    to_city = SelectField(_l("核报城市"), validators=[DataRequired()])
    subject = StringField(_l("核报事项"), validators=[DataRequired(), Length(max=200)])
    question = TextAreaField(_l("核报内容"), validators=[DataRequired(), Length(max=10000)])
    deadline_minutes = IntegerField(
        _l("答复时限（分钟）"), default=60, validators=[DataRequired(), NumberRange(1, 7 * 24 * 60)]
    )


class AnswerForm(FlaskForm):
    """Answer a verification request."""

    answer = TextAreaField(_l("核报答复"), validators=[DataRequired(), Length(max=10000)])


class DailyReportForm(FlaskForm):
    """File today's daily or zero report."""

    zero = BooleanField(_l("零报告（本日无突发事件）"))
    body = TextAreaField(_l("报告内容"), validators=[Optional(), Length(max=10000)])


class IncidentEditForm(FlaskForm):
    """Change an incident's level, status or affected cities."""

    level = SelectField(_l("事件级别"), validators=[DataRequired()])
    status = SelectField(_l("状态"), validators=[DataRequired()])
    affected_cities = SelectMultipleField(_l("涉及城市"), validators=[DataRequired()])


def status_choices() -> list[tuple[str, str]]:
    """Return the incident statuses with their translated labels."""
    return [("reported", str(_l("已接报"))), ("responding", str(_l("处置中"))), ("closed", str(_l("已结束")))]
