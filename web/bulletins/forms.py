"""Forms of the bulletin pages (Flask-WTF, CSRF-protected); labels pass through the catalogue."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional


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
        _l("范围"),
        choices=[
            ("public", _l("公开")),
            ("restricted", _l("限定（仅通报对象可见）")),
            ("private", _l("指定对象（仅所列城市可见，按 CAP Private 发出）")),
        ],
    )
    receipt_minutes = IntegerField(
        _l("回执时限（分钟）"), default=30, validators=[DataRequired(), NumberRange(1, 7 * 24 * 60)]
    )
    exercise = BooleanField(_l("演练（非真实事件）"))
    # The incident the bulletin is about, when issued from the incident's page.
    incident = HiddenField(validators=[Optional()])


class ReceiptForm(FlaskForm):
    """Acknowledge a bulletin (签收)."""
