"""Encrypt the secrets the hub must be able to present again (never its users' passwords).

The keys come from `HUB_ENCRYPTION_KEY`: one or more Fernet keys, comma-separated. The first
encrypts; every one of them decrypts, so a new key can be put in front of the old ones, the
stored values re-encrypted (`hub rotate-keys`), and the old key dropped afterwards.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hub.config import ConfigError, Settings, check_encryption_key, encryption_keys


class SecretUnreadable(RuntimeError):
    """A stored secret was not encrypted with any of the configured keys."""


class Cipher:
    """Encrypt with the first configured key, decrypt with any."""

    def __init__(self, keys: str) -> None:
        check_encryption_key(keys)
        self._fernet = MultiFernet([Fernet(key) for key in encryption_keys(keys)])

    def encrypt(self, plain: str) -> str:
        """Return the text encrypted (and authenticated) with the first key."""
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """Return the plain text of a value encrypted with any of the keys."""
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnreadable(
                "a stored secret cannot be decrypted with any key in HUB_ENCRYPTION_KEY; "
                "keep the old key after the new one until `hub rotate-keys` has run"
            ) from exc

    def rotate(self, stored: str) -> str:
        """Return the value re-encrypted with the first key."""
        try:
            return self._fernet.rotate(stored.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnreadable(
                "a stored secret cannot be decrypted with any key in HUB_ENCRYPTION_KEY"
            ) from exc


def cipher(settings: Settings) -> Cipher:
    """Return the cipher of these settings; fail clearly when they carry no key."""
    if not settings.encryption_key:
        raise ConfigError("HUB_ENCRYPTION_KEY is not set; the hub cannot store or read partner tokens")
    return _cipher(settings.encryption_key)


@lru_cache(maxsize=8)
def _cipher(keys: str) -> Cipher:
    return Cipher(keys)
