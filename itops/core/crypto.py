"""Encryption of stored secrets (device credentials, bind passwords) with the instance's Fernet key."""
from __future__ import annotations

import hashlib
import secrets

from flask import current_app


class DecryptionFailed(Exception):
    """The value was encrypted with another key, or has been tampered with."""


def _fernet():
    # Imported on use: `cryptography` adds ~7 MB to a process, and most requests never decrypt anything.
    from cryptography.fernet import Fernet

    return Fernet(current_app.config["ITOPS_ENCRYPTION_KEY"].encode())


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionFailed("stored secret cannot be decrypted with this instance's key") from None


def new_secret_token(prefix: str) -> str:
    """A bearer secret: a readable prefix (tells people and scanners what it is) and 256 random bits."""
    return prefix + secrets.token_urlsafe(32)


def token_digest(secret: str) -> str:
    """How bearer secrets are stored. They are random, so a fast hash is enough; a slow KDF would slow every call."""
    return hashlib.sha256(secret.encode()).hexdigest()
