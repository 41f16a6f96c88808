"""Password hashing, tokens, CSRF comparison, login rate limiting and role rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.access import Permission, Role, allowed, parse_role
from portal.security import (
    LoginRateLimiter,
    hash_password,
    needs_rehash,
    new_token,
    same_token,
    token_hash,
    verify_password,
)
from portal.views.login import safe_next


def test_passwords_are_salted_argon2id_hashes_that_verify():
    first, second = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert first.startswith("$argon2id$") and first != second  # salted
    assert "s3cret-pass" not in first
    assert verify_password(first, "s3cret-pass") and verify_password(second, "s3cret-pass")
    assert not verify_password(first, "s3cret-Pass")
    assert not needs_rehash(first)


def test_bad_hashes_and_unknown_users_fail_without_errors():
    assert not verify_password(None, "anything at all")
    assert not verify_password("not-a-hash", "anything at all")


def test_short_passwords_are_refused():
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


def test_tokens_are_random_and_stored_as_hashes():
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 43
    assert token_hash(a) == token_hash(a) and len(token_hash(a)) == 64 and a not in token_hash(a)


@pytest.mark.parametrize(("expected", "given", "ok"), [
    ("abc", "abc", True), ("abc", "abd", False), ("abc", "", False), ("", "", False),
    (None, None, False), ("abc", None, False), ("abc", "abcd", False),
])
def test_csrf_tokens_match_only_exactly(expected, given, ok):
    assert same_token(expected, given) is ok


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_five_failures_block_a_login_from_an_address_for_fifteen_minutes():
    clock = Clock()
    limiter = LoginRateLimiter(clock)
    key = limiter.key(" Olga ", "10.0.0.1")
    assert key == limiter.key("olga", "10.0.0.1")
    for _ in range(4):
        limiter.failed(key)
        clock.now += timedelta(minutes=1)
    assert not limiter.blocked(key)
    limiter.failed(key)
    assert limiter.blocked(key)
    assert not limiter.blocked(limiter.key("olga", "10.0.0.2"))  # another address
    assert not limiter.blocked(limiter.key("sergey", "10.0.0.1"))  # another login
    clock.now += timedelta(minutes=11)  # the first failure is now 15 minutes old
    assert not limiter.blocked(key)
    limiter.failed(key)
    assert limiter.blocked(key)


def test_a_success_clears_the_failures_and_the_table_is_bounded():
    clock = Clock()
    limiter = LoginRateLimiter(clock, limit=2, max_keys=3)
    limiter.failed("a")
    limiter.succeeded("a")
    limiter.failed("a")
    assert not limiter.blocked("a")
    for key in "bcde":
        limiter.failed(key)
    assert len(limiter._failures) == 3


def test_role_rules():
    assert allowed("operator", Permission.HANDLE_COMPLAINTS)
    assert not allowed("operator", Permission.VIEW_DEADLINES)
    assert allowed("supervisor", Permission.VIEW_DEADLINES)
    assert not allowed("supervisor", Permission.HANDLE_COMPLAINTS)
    assert allowed("communications", Permission.VIEW_REGISTER)
    assert not allowed("communications", Permission.HANDLE_COMPLAINTS)
    assert all(allowed("admin", p) for p in Permission)
    assert not allowed("root", Permission.VIEW_REGISTER)
    assert parse_role(" Admin ") is Role.ADMIN
    with pytest.raises(ValueError, match="operator"):
        parse_role("boss")


@pytest.mark.parametrize(("raw", "expected"), [
    ("/portal/complaints?x=1", "/portal/complaints?x=1"), (None, "/portal"),
    ("https://evil.example/", "/portal"), ("//evil.example", "/portal"),
    ("/portal//evil.example", "/portal"), ("/portal\\@evil", "/portal"), ("/chat", "/portal"),
])
def test_login_redirects_stay_inside_the_portal(raw, expected):
    assert safe_next(raw) == expected
