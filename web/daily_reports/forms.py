"""The daily report form (Flask-WTF, CSRF-protected); labels pass through the catalogue."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    TextAreaField,
)
from wtforms.validators import Length, Optional


class DailyReportForm(FlaskForm):
    """File today's daily or zero report."""

    zero = BooleanField(_l("零报告（本日无突发事件）"))
    body = TextAreaField(_l("报告内容"), validators=[Optional(), Length(max=10000)])
    # Shown, with the number of open incidents, only when the city has some.
    confirm_open_incidents = BooleanField(_l("确认报送零报告"))
