"""Forms the kernel pages share (Flask-WTF, CSRF-protected); capabilities keep theirs."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional


class LoginForm(FlaskForm):
    """Log-in form."""

    username = StringField(_l("用户名"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("密码"), validators=[DataRequired(), Length(max=256)])


class UserForm(FlaskForm):
    """Create a user (administrators)."""

    username = StringField(_l("用户名"), validators=[DataRequired(), Length(max=64)])
    display_name = StringField(_l("姓名"), validators=[Optional(), Length(max=64)])
    password = PasswordField(_l("初始密码"), validators=[DataRequired(), Length(min=10, max=256)])
    city = SelectField(_l("所属城市"), validators=[DataRequired()])
    role = SelectField(_l("角色"), validators=[DataRequired()])


class PasswordResetForm(FlaskForm):
    """Set a new password for a user (administrators)."""

    password = PasswordField(_l("新密码"), validators=[DataRequired(), Length(min=10, max=256)])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that change state."""
