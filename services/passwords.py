"""mosquitto's password file: hashes as ``mosquitto_passwd`` 2.0 writes them ($7$)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "passwd_text", "password_matches"]

_PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes ($7$ = PBKDF2-SHA512)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """mosquitto's ``$7$`` hash (PBKDF2-SHA512, 101 rounds, 12-byte salt), as mosquitto_passwd."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, _PBKDF2_ITERATIONS)
    return (f"$7${_PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def password_matches(password: str, hashed: str) -> bool:
    """Whether a ``$7$`` hash (ours or mosquitto_passwd's) is of ``password``."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        rounds, salt, digest = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except ValueError:
        return False
    ours = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, rounds)
    return hmac.compare_digest(ours, digest)


def passwd_text(passwords: dict[str, str], existing: str = "") -> str:
    """The broker's password file; an existing line that still matches is kept as it is."""
    old = dict(line.split(":", 1) for line in existing.splitlines() if ":" in line)
    lines = []
    for user, password in passwords.items():
        hashed = old.get(user, "")
        if not password_matches(password, hashed):
            hashed = hash_password(password)
        lines.append(f"{user}:{hashed}")
    return "\n".join(lines) + "\n"
