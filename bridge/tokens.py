"""Who may use the HTTP API: a bearer token, generated once and kept in a file only its owner can read.

On loopback no token is needed unless one is configured; on any other interface the server refuses to start
without one. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from restyle.engine import RestyleError, SettingsError


class AuthError(RestyleError):
    code = "unauthorized"


def read_token(path: Path) -> str:
    """The token stored in ``path`` (its first line)."""
    try:
        token = path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
    except (OSError, IndexError):
        raise SettingsError(f"Cannot read a token from {path}: the file must hold the token on its first line.") from None
    if len(token) < 16:
        raise SettingsError(f"The token in {path} is too short (at least 16 characters); delete the file to get a new one.")
    return token


def token_from_file(path: Path, create: bool) -> str:
    """The token in ``path``; with ``create``, a new random one is written there (mode 0600) if there is none."""
    if path.exists() or not create:
        return read_token(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return token


class TokenGate:
    """Checks the ``Authorization: Bearer ...`` header of each request (no token configured: everyone passes)."""

    def __init__(self, token: str | None):
        self.token = token

    def check(self, authorization: str | None) -> None:
        """Raise AuthError unless the header carries the token."""
        if self.token is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise AuthError("This server needs its access token: pass --token-file FILE (the server prints where "
                            "its token is kept).")
