"""`hub rotate-keys` re-encrypts the stored partner tokens with the first key of HUB_ENCRYPTION_KEY."""

from __future__ import annotations

from click.testing import CliRunner
from cryptography.fernet import Fernet
from flask import Flask

from hub.app import settings_of
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from hub.partners import services as partners
from web.cli import main

ADMIN = Actor("system", "tests", None, Role.ADMIN)


def _env(app: Flask, keys: str) -> dict[str, str]:
    settings = settings_of(app)
    return {
        "HUB_SECRET_KEY": "cli-test",
        "HUB_ENCRYPTION_KEY": keys,
        "HUB_INSTANCE_PATH": str(settings.instance_path),
        "HUB_DATABASE_URL": settings.sqlalchemy_url,
        "HUB_DEMO": "",
    }


def test_rotate_keys_re_encrypts_with_the_new_key(app: Flask, city) -> None:
    old = settings_of(app)
    partners.register(db.session, ADMIN, city("suqian"), "http://suqian.example", "tok-suqian", settings=old)
    db.session.commit()
    new_key = Fernet.generate_key().decode()

    result = CliRunner().invoke(main, ["rotate-keys"], env=_env(app, f"{new_key},{old.encryption_key}"))

    assert result.exit_code == 0, result.output
    assert "1 partner token(s) re-encrypted" in result.output
    db.session.expire_all()
    platform = partners.platform_for(db.session, "suqian")
    assert partners.outbound_token(platform, old.with_overrides(encryption_key=new_key)) == "tok-suqian"


def test_rotate_keys_without_the_old_key_says_so_and_changes_nothing(app: Flask, city) -> None:
    old = settings_of(app)
    partners.register(db.session, ADMIN, city("suqian"), "http://suqian.example", "tok-suqian", settings=old)
    db.session.commit()

    result = CliRunner().invoke(main, ["rotate-keys"], env=_env(app, Fernet.generate_key().decode()))

    assert result.exit_code != 0
    assert "cannot be decrypted with any key in HUB_ENCRYPTION_KEY" in result.output
    db.session.expire_all()
    assert partners.outbound_token(partners.platform_for(db.session, "suqian"), old) == "tok-suqian"


def test_the_hub_will_not_start_without_an_encryption_key(tmp_path) -> None:
    result = CliRunner().invoke(
        main,
        ["db", "upgrade"],
        env={
            "HUB_SECRET_KEY": "x",
            "HUB_ENCRYPTION_KEY": "",
            "HUB_INSTANCE_PATH": str(tmp_path),
            "HUB_DEMO": "",
        },
    )
    assert result.exit_code != 0
    assert "HUB_ENCRYPTION_KEY is not set" in result.output
