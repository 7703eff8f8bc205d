"""The tokens the hub presents to the cities' platforms are stored encrypted, and their key rotates."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import text

from hub.app import settings_of
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.crypto import SecretUnreadable
from hub.kernel.errors import Forbidden
from hub.kernel.models import AuditEntry, Role
from hub.partners import services as partners

ADMIN = Actor("system", "tests", None, Role.ADMIN)
TOKEN = "platform-issued-token-Ωmega-0123456789"


def _stored(city_id: int) -> str:
    return db.session.execute(
        text("SELECT outbound_token_encrypted FROM partner_platforms WHERE city_id = :c"), {"c": city_id}
    ).scalar_one()


def test_a_partner_token_is_stored_encrypted_and_read_back(app: Flask, city) -> None:
    settings = settings_of(app)
    linyi = city("linyi")
    partners.register(db.session, ADMIN, linyi, "http://linyi.example/", TOKEN, settings=settings)
    db.session.commit()
    stored = _stored(linyi.id)
    assert TOKEN not in stored
    assert Fernet(settings.encryption_key).decrypt(stored.encode()).decode() == TOKEN
    platform = partners.platform_for(db.session, "linyi")
    assert partners.outbound_token(platform, settings) == TOKEN


def test_rotating_keys_re_encrypts_every_token_with_the_first_key(app: Flask, city) -> None:
    old = settings_of(app)
    for slug in ("linyi", "heze"):
        partners.register(
            db.session, ADMIN, city(slug), f"http://{slug}.example", f"{TOKEN}-{slug}", settings=old
        )
    db.session.commit()
    new_key = Fernet.generate_key().decode()
    both = old.with_overrides(encryption_key=f"{new_key},{old.encryption_key}")
    # Before rotating, the old tokens still open with the new key in front.
    assert partners.outbound_token(partners.platform_for(db.session, "heze"), both) == f"{TOKEN}-heze"

    assert partners.rotate_tokens(db.session, ADMIN, both) == 2
    db.session.commit()

    new_only = old.with_overrides(encryption_key=new_key)
    for slug in ("linyi", "heze"):
        platform = partners.platform_for(db.session, slug)
        assert partners.outbound_token(platform, new_only) == f"{TOKEN}-{slug}"
        with pytest.raises(SecretUnreadable):
            partners.outbound_token(platform, old)
    entry = db.session.query(AuditEntry).filter_by(action="partner.tokens_rotated").one()
    assert entry.after == {"count": 2}


def test_rotating_without_the_old_key_changes_nothing(app: Flask, city) -> None:
    old = settings_of(app)
    partners.register(db.session, ADMIN, city("linyi"), "http://linyi.example", TOKEN, settings=old)
    db.session.commit()
    before = _stored(city("linyi").id)
    stranger = old.with_overrides(encryption_key=Fernet.generate_key().decode())
    with pytest.raises(SecretUnreadable, match="HUB_ENCRYPTION_KEY"):
        partners.rotate_tokens(db.session, ADMIN, stranger)
    db.session.rollback()
    assert _stored(city("linyi").id) == before


def test_only_an_administrator_rotates(app: Flask, make_user) -> None:
    officer = Actor.for_user(make_user("duty", "xuzhou", Role.DUTY_OFFICER))
    with pytest.raises(Forbidden):
        partners.rotate_tokens(db.session, officer, settings_of(app))
