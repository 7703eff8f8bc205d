"""Column types shared by the models, and the session type the services take."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeAlias

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import CursorResult, DateTime, Result, Table
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session
from sqlalchemy.types import TypeDecorator

# Services take a plain session (flows, the runner, tests) or Flask-SQLAlchemy's request-scoped
# proxy `db.session`, which forwards every call to the session of the current context.
DbSession: TypeAlias = Session | scoped_session[FlaskSession]


def affected_rows(result: Result[*tuple[Any, ...]]) -> int:
    """Return how many rows an executed UPDATE or DELETE matched."""
    # `Session.execute` is typed to return a plain Result; a DML statement always gives a cursor's.
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of an UPDATE or DELETE: {type(result).__name__}")
    return result.rowcount


def table_of(model: type[DeclarativeBase]) -> Table:
    """Return the table a model is mapped to, for Core statements that bypass the ORM."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as UTC and always read them back aware (SQLite drops zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone first")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)
