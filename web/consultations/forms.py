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
    TimeField,
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
    """Record a resolution, by consensus or by the cities' votes, with an optional action item.

    Each city's vote comes as `vote-<city>` (approve, reject, abstain, or empty when it did not vote).
    """

    text = TextAreaField(_l("决议内容"), validators=[DataRequired(), Length(max=10_000)])
    decision_mode = SelectField(
        _l("决定方式"), choices=[("consensus", _l("协商一致")), ("vote", _l("表决"))], default="consensus"
    )
    owner_city = SelectField(_l("责任城市"), validators=[Optional()])
    action_title = StringField(_l("督办事项"), validators=[Optional(), Length(max=200)])
    due_on = DateField(_l("办结期限"), validators=[Optional()])


class SignForm(FlaskForm):
    """Sign the minutes as the chair (网上签办)."""


class CloseItemForm(FlaskForm):
    """Close an action item as its owner city, with evidence (a note, and documents if any)."""

    note = TextAreaField(_l("办结说明"), validators=[DataRequired(), Length(max=2_000)])
    documents = TextAreaField(
        _l("证明材料（每行一个链接或编号）"), validators=[Optional(), Length(max=10_000)]
    )


class ReopenItemForm(FlaskForm):
    """Reopen a closed action item as the chair city, with a reason and maybe a new due day."""

    reason = TextAreaField(_l("重新办理的理由"), validators=[DataRequired(), Length(max=2_000)])
    due_on = DateField(_l("新的办结期限"), validators=[Optional()])


class RollCallForm(FlaskForm):
    """The chair's roll-call: the invited cities present."""

    present = SelectMultipleField(_l("出席城市"), validators=[Optional()])


class RotationChangeForm(FlaskForm):
    """Record a skip or swap of the conference's rotation, with its reason."""

    kind = SelectField(_l("变更"), choices=[("skip", _l("跳过")), ("swap", _l("对调"))])
    seq = IntegerField(_l("会议届次"), validators=[DataRequired(), NumberRange(1, 10_000)])
    role = SelectField(
        _l("轮值内容"), choices=[("both", _l("承办与主持")), ("host", _l("承办")), ("chair", _l("主持"))]
    )
    city = SelectField(_l("城市"), validators=[DataRequired()])
    with_city = SelectField(_l("对调城市"), validators=[Optional()])
    reason = TextAreaField(_l("理由"), validators=[DataRequired(), Length(max=2_000)])


class ConferenceForm(FlaskForm):
    """Edit the standing conference's definition from its next meeting on.

    Each city's place in the rotation comes as `order-<city>` (1, 2, …; empty when the city is not
    a member): the members and the order in one list.
    """

    name = StringField(_l("会议名称"), validators=[DataRequired(), Length(max=200)])
    next_host = SelectField(_l("下次会议承办城市"), validators=[DataRequired()])
    next_meeting_on = DateField(_l("下次会议日期"), validators=[DataRequired()])
    meeting_time = TimeField(_l("开始时间"), validators=[DataRequired()])
    duration_minutes = IntegerField(_l("时长（分钟）"), validators=[DataRequired(), NumberRange(30, 24 * 60)])
    rhythm_months = IntegerField(_l("会期间隔（月）"), validators=[DataRequired(), NumberRange(1, 24)])
    agenda_deadline_days = IntegerField(
        _l("议题截止（会前天数）"), validators=[DataRequired(), NumberRange(1, 60)]
    )
    lead_days = IntegerField(_l("提前创建（会前天数）"), validators=[DataRequired(), NumberRange(1, 180)])
