"""Passwords, tokens, CSRF comparison and login rate limiting."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHasher()  # argon2id with the RFC 9106 low-memory parameters
# Verified against when the login is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not a password of anybody")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted, parameters encoded in the string)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``stored_hash`` None spends the same time and fails."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(stored_hash)


def new_token() -> str:
    """A random URL-safe token with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored for a session token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; empty or missing tokens never match."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class LoginRateLimiter:
    """At most ``limit`` failed logins per key (login + client address) in ``window``.

    Kept in memory: one process serves the portal. Old keys are dropped as they expire,
    and the table never holds more than ``max_keys`` keys (the oldest go first).
    """

    def __init__(self, clock: Callable[[], datetime], *, limit: int = 5,
                 window: timedelta = timedelta(minutes=15), max_keys: int = 10_000) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[datetime]] = {}

    @staticmethod
    def key(login: str, address: str) -> str:
        return f"{login.strip().lower()}|{address}"

    def _recent(self, key: str) -> deque[datetime]:
        cutoff = self.clock() - self.window
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures

    def blocked(self, key: str) -> bool:
        """True while ``key`` has ``limit`` or more failures inside the window."""
        return len(self._recent(key)) >= self.limit

    def failed(self, key: str) -> None:
        failures = self._recent(key)
        failures.append(self.clock())
        self._failures[key] = failures
        while len(self._failures) > self.max_keys:
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
