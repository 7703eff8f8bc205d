"""Forms of the verification pages (Flask-WTF, CSRF-protected); labels pass through the catalogue."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange


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
