"""One-time passwords: complex enough for AD, easy to type, cheap to text."""

from __future__ import annotations

import re

import pytest

from blink_sms.otp import (
    ALPHABET,
    DIGITS,
    GSM7_BASIC,
    LOWER,
    SYMBOLS,
    UPPER,
    generate_password,
    is_gsm7,
)
from directory_adapters import PasswordPolicy

LOOK_ALIKES = "0Oo1lIi|5S2Z8Buv"
GSM7_EXTENSION = "^{}\\[~]|€"
COUNT = 10_000


@pytest.fixture(scope="module")
def passwords() -> list[str]:
    policy = PasswordPolicy(min_length=8)
    return [generate_password(policy, length=12, avoid=["jdoe", "John Doe"]) for _ in range(COUNT)]


def test_every_password_has_the_requested_length(passwords: list[str]) -> None:
    assert {len(p) for p in passwords} == {12}


def test_every_password_has_all_four_classes(passwords: list[str]) -> None:
    for password in passwords:
        for cls in (UPPER, LOWER, DIGITS, SYMBOLS):
            assert set(password) & set(cls), (password, cls)
        assert any(c.isupper() for c in password)
        assert any(c.islower() for c in password)
        assert any(c.isdigit() for c in password)
        assert any(not c.isalnum() for c in password)


def test_every_password_uses_only_the_alphabet(passwords: list[str]) -> None:
    used = set("".join(passwords))
    assert used <= set(ALPHABET)
    assert not used & set(LOOK_ALIKES)
    assert "rn" not in "".join(passwords)  # no "r" at all, so never a fake "m"


def test_every_password_is_gsm7_basic(passwords: list[str]) -> None:
    assert all(is_gsm7(p) for p in passwords)
    assert not set("".join(passwords)) & set(GSM7_EXTENSION)


def test_no_password_starts_with_a_symbol(passwords: list[str]) -> None:
    assert not any(p[0] in SYMBOLS for p in passwords)


def test_no_password_contains_the_user_name(passwords: list[str]) -> None:
    for password in passwords:
        folded = password.casefold()
        for token in ("jdoe", "john", "doe"):
            assert token not in folded


def test_passwords_do_not_repeat(passwords: list[str]) -> None:
    assert len(set(passwords)) == COUNT


def test_every_character_of_the_alphabet_turns_up(passwords: list[str]) -> None:
    assert set("".join(passwords)) == set(ALPHABET)


def test_the_alphabet_is_unambiguous_and_cheap() -> None:
    assert len(set(ALPHABET)) == len(ALPHABET)
    assert not set(ALPHABET) & set(LOOK_ALIKES)
    assert is_gsm7(ALPHABET)
    # A letter whose capital looks like its small form appears in one case only.
    for letter in "ckpwxyj":
        assert not (letter in ALPHABET and letter.upper() in ALPHABET), letter


def test_the_policy_minimum_wins_over_a_shorter_length() -> None:
    password = generate_password(PasswordPolicy(min_length=16), length=12)
    assert len(password) == 16


def test_a_longer_length_wins_over_the_policy_minimum() -> None:
    assert len(generate_password(PasswordPolicy(min_length=8), length=20)) == 20


def test_a_tiny_length_still_has_four_classes() -> None:
    password = generate_password(PasswordPolicy(min_length=0), length=1)
    assert len(password) == 4
    assert all(set(password) & set(cls) for cls in (UPPER, LOWER, DIGITS, SYMBOLS))


def test_it_avoids_tokens_split_like_active_directory() -> None:
    # "ade" and "hat" are made of alphabet characters: about one 200-character
    # candidate in twenty contains one of them and must be thrown away.
    names = ["x.ade", "Mr_Hat#jo"]
    for _ in range(500):
        folded = generate_password(PasswordPolicy(), length=200, avoid=names).casefold()
        assert "ade" not in folded
        assert "hat" not in folded


def test_it_gives_up_when_the_names_leave_no_room() -> None:
    every_triple = [a + b + c for a in ALPHABET for b in ALPHABET for c in ALPHABET]
    with pytest.raises(RuntimeError):
        generate_password(PasswordPolicy(), length=64, avoid=every_triple)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hello",
        "Your password: AbC3!",
        "é",
        "è à ù ì ò",
        "Ç",
        "ñÑ äÄ öÖ üÜ ß",
        "@£$¥",
        "¿¡§¤",
        "ΔΦΓΛΩΠΨΣΘΞ",
        "line\nbreak\r",
        "!\"#%&'()*+,-./:;<=>?_",
    ],
)
def test_is_gsm7_accepts_the_basic_table(text: str) -> None:
    assert is_gsm7(text)


@pytest.mark.parametrize(
    "text",
    [
        "á",
        "ç",
        "ú",
        "ê",
        "€",
        "[",
        "]",
        "{",
        "}",
        "\\",
        "^",
        "~",
        "|",
        "🙏",
        "\t",
        "Wachtwoord: \u2018x\u2019",
        "Contraseña á",
    ],
)
def test_is_gsm7_rejects_everything_else(text: str) -> None:
    assert not is_gsm7(text)


def test_the_basic_table_has_127_characters() -> None:
    # 128 code points minus ESC, which leads into the extension table.
    assert len(GSM7_BASIC) == 127
    assert "\x1b" not in GSM7_BASIC
    assert not re.search(r"[\[\]{}\\^~|€]", "".join(sorted(GSM7_BASIC)))
