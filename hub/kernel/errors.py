"""Errors services raise; the web layer turns each into a status code and a stable code."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every rule the hub refuses to break; `code` is stable for API clients.

    `reason`, where given, names the particular refusal (for example "username_taken") so that
    the pages can say it in the reader's language; `details` may carry the values it mentions.
    """

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, details: object | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.reason = reason


class InvalidInput(ServiceError):
    """The input breaks a rule of the domain."""

    status = 422
    code = "invalid_input"


class NotFound(ServiceError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The caller may not do this; nothing was changed."""

    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The change clashes with the current state."""

    status = 409
    code = "conflict"


class AuthenticationFailed(ServiceError):
    """Wrong credentials, or an account locked after repeated failures."""

    status = 401
    code = "unauthenticated"
