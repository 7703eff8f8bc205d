"""Who is acting: a person, a partner platform or the hub itself."""

from __future__ import annotations

from dataclasses import dataclass

from hub.kernel.models import ApiToken, Role, User


@dataclass(frozen=True)
class Actor:
    """The identity a service checks its rules against and writes into the audit trail."""

    kind: str  # "user", "partner" or "system"
    name: str
    city_id: int | None
    role: Role | None = None
    user_id: int | None = None

    @classmethod
    def for_user(cls, user: User) -> Actor:
        """Return the actor for a logged-in person."""
        return cls("user", user.username, user.city_id, user.role, user.id)

    @classmethod
    def for_token(cls, token: ApiToken) -> Actor:
        """Return the actor for a partner platform's bearer token; it acts as a coordinator."""
        return cls("partner", f"token:{token.name}", token.city_id, Role.COORDINATOR)

    @classmethod
    def system(cls, name: str = "hub") -> Actor:
        """Return the actor for the hub's own processes."""
        return cls("system", name, None)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def can_write_incidents(self) -> bool:
        """Coordinators and duty officers record incidents; observers only read."""
        return self.role in (Role.COORDINATOR, Role.DUTY_OFFICER)
