"""Forms of the duty pages: CSV uploads of the roster and the directory."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class CsvImportForm(FlaskForm):
    """Upload a CSV file (UTF-8) of the roster or the directory."""

    file = FileField(_l("CSV 文件"), validators=[FileRequired(_l("请选择要导入的 CSV 文件。"))])
