"""Forms of the consultation pages (Flask-WTF, CSRF-protected); labels pass through the catalogue."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional


class CallForm(FlaskForm):
    """Call a consultation (召集会商)."""

    title = StringField(_l("会商主题"), validators=[DataRequired(), Length(max=200)])
    starts_at = DateTimeLocalField(_l("开始时间"), format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    duration_minutes = IntegerField(
        _l("时长（分钟）"), default=60, validators=[DataRequired(), NumberRange(10, 24 * 60)]
    )
    video_link = StringField(_l("视频会商链接"), validators=[Optional(), Length(max=500)])
    location = StringField(_l("地点"), validators=[Optional(), Length(max=200)])
    invited_cities = SelectMultipleField(_l("邀请城市"), validators=[DataRequired()])
    exercise = BooleanField(_l("演练（非真实事件）"))


class AnswerForm(FlaskForm):
    """Answer an invitation for the person's city."""

    answer = SelectField(
        _l("答复"), choices=[("accept", _l("参加")), ("decline", _l("不参加")), ("delegate", _l("委派参加"))]
    )
    delegate_name = StringField(_l("委派人员"), validators=[Optional(), Length(max=100)])
    note = StringField(_l("备注"), validators=[Optional(), Length(max=2000)])


class MinutesForm(FlaskForm):
    """Save the minutes; the base revision guards against overwriting a newer save."""

    base_revision = HiddenField(validators=[DataRequired()])
    content = TextAreaField(_l("会议纪要"), validators=[Optional(), Length(max=200_000)])
    public_part = TextAreaField(_l("可公开部分"), validators=[Optional(), Length(max=20_000)])


class ResolutionForm(FlaskForm):
    """Record a resolution adopted by consensus, with an optional action item."""

    text = TextAreaField(_l("决议内容"), validators=[DataRequired(), Length(max=10_000)])
    owner_city = SelectField(_l("责任城市"), validators=[Optional()])
    action_title = StringField(_l("督办事项"), validators=[Optional(), Length(max=200)])
    due_on = DateField(_l("办结期限"), validators=[Optional()])


class SignForm(FlaskForm):
    """Sign the minutes as the chair (网上签办)."""
