"""The pure rules of logging in: password rules, session lifetimes, bearer kinds, TOTP steps."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pyotp
import pytest

from sscard.access.auth_model import (
    NO_PASSWORD_HASH,
    BearerKind,
    SessionTimes,
    check_login_password,
    check_session,
    classify_bearer,
    clean_login_name,
    due_for_touch,
    has_usable_password,
    mask_name,
)
from sscard.access.totp import totp_step
from sscard.core.errors import DomainError, InvalidInput
from sscard.core.policy import LoginSection

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
POLICY = LoginSection()


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "too_short"),
        ("abcdefghi", "too_short"),
        ("0123456789", "only_digits"),
        ("x" * 201, "too_long"),
        ("hello Wang Fang!", "contains_name"),
        ("WANGFANG-rocks", "contains_name"),
        ("fang-and-more", "contains_name"),
        ("王芳的密码很长很长很长", "contains_name"),
    ],
)
def test_a_login_password_breaking_a_rule_names_the_rule(password: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_login_password(password, names=("Wang Fang", "wangfang", "王芳"))
    assert refused.value.extra["reason"] == reason
    assert password not in refused.value.detail or not password


def test_a_good_login_password_passes() -> None:
    assert check_login_password("blue ocean 1987", names=("Wang Fang",)) == "blue ocean 1987"


def test_login_names_are_folded_to_lower_case_and_checked() -> None:
    assert clean_login_name(" Li.Lei ") == "li.lei"
    with pytest.raises(InvalidInput):
        clean_login_name("li lei")


def _times(*, created: timedelta, seen: timedelta, ended: bool = False) -> SessionTimes:
    return SessionTimes(
        created_at=NOW - created,
        last_seen_at=NOW - seen,
        expires_at=NOW - created + timedelta(hours=POLICY.session_absolute_hours),
        ended_at=NOW if ended else None,
    )


def test_sessions_expire_when_idle_too_long_or_too_old_or_ended() -> None:
    check_session(_times(created=timedelta(hours=11), seen=timedelta(minutes=29)), POLICY, NOW)
    cases = [
        (_times(created=timedelta(hours=1), seen=timedelta(minutes=30)), "session_expired"),
        (_times(created=timedelta(hours=12), seen=timedelta(0)), "session_expired"),
        (_times(created=timedelta(0), seen=timedelta(0), ended=True), "session_ended"),
    ]
    for times, code in cases:
        with pytest.raises(DomainError) as refused:
            check_session(times, POLICY, NOW)
        assert refused.value.code == code


def test_use_is_recorded_at_most_once_a_minute() -> None:
    assert due_for_touch(None, NOW)
    assert not due_for_touch(NOW - timedelta(seconds=59), NOW)
    assert due_for_touch(NOW - timedelta(seconds=60), NOW)


def test_bearer_values_are_told_apart_by_their_prefix() -> None:
    assert classify_bearer("ses_abc") == (BearerKind.SESSION, "", "ses_abc")
    assert classify_bearer("ak_12.s3cret") == (BearerKind.CREDENTIAL, "ak_12", "s3cret")
    assert classify_bearer("demo-center") == (BearerKind.TOKEN, "", "demo-center")
    assert classify_bearer("ak_without_secret")[0] is BearerKind.TOKEN


def test_a_cardholders_name_is_masked_but_its_first_character() -> None:
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳小明") == "欧***"


def test_a_totp_code_counts_for_its_step_once_and_one_step_either_side() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    step = totp.timecode(NOW)
    assert totp_step(secret, totp.at(NOW), NOW, None) == step
    assert totp_step(secret, totp.at(NOW), NOW, step) is None  # used already
    assert totp_step(secret, totp.at(NOW - timedelta(seconds=30)), NOW, None) == step - 1
    assert totp_step(secret, totp.at(NOW - timedelta(seconds=90)), NOW, None) is None
    assert totp_step(secret, "12345", NOW, None) is None


def test_the_login_settings_come_from_the_policy_and_a_bad_one_names_its_line() -> None:
    from sscard.core.policy import PolicyError, load_policy, parse_policy, resolve_policy_path

    assert load_policy("dongguan").logins == LoginSection()
    text = resolve_policy_path("dongguan").read_text(encoding="utf-8")
    bad = text.replace("session_idle_minutes = 30", "session_idle_minutes = 0")
    with pytest.raises(PolicyError) as refused:
        parse_policy(bad, source="dg.toml")
    line = next(n for n, t in enumerate(bad.splitlines(), 1) if "session_idle_minutes" in t)
    assert refused.value.line == line
    assert "logins.session_idle_minutes" in refused.value.reason


def test_a_login_row_without_a_password_is_told_from_an_argon2_hash() -> None:
    from sscard.access.auth import _verify_password, hash_password

    real = hash_password("blue ocean 1987")
    assert has_usable_password(real)
    assert not has_usable_password(NO_PASSWORD_HASH)
    assert _verify_password(real, "blue ocean 1987")
    assert not _verify_password(NO_PASSWORD_HASH, NO_PASSWORD_HASH)  # never verifies
