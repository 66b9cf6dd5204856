"""Inbound SMS bodies, messy and localised, and what they ask for."""

from __future__ import annotations

import time

import pytest

from blink_sms.keywords import (
    MAX_CHARS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    RESERVED_HELP_WORDS,
    Action,
    Keyword,
    parse_keyword,
)

RESET = Action.RESET
UNLOCK = Action.UNLOCK
HELP = Action.HELP
STOP = Action.STOP
START = Action.START
UNKNOWN = Action.UNKNOWN

TWILIO_OPT_OUT = ["STOP", "UNSUBSCRIBE", "END", "QUIT", "STOPALL", "REVOKE", "OPTOUT", "CANCEL"]
TWILIO_OPT_IN = ["START", "YES", "UNSTOP"]
TWILIO_HELP = ["HELP", "INFO"]


@pytest.mark.parametrize(
    ("body", "action"),
    [
        # English, every way a phone sends it.
        ("RESET", RESET),
        ("reset", RESET),
        ("Reset.", RESET),
        (" reset please", RESET),
        ("   reset    please   ", RESET),
        ("RESET PASSWORD", RESET),
        ("reset!!", RESET),
        ("reset?!", RESET),
        ("🙏 reset", RESET),
        ("reset 🙏🙏🙏", RESET),
        ("*reset*", RESET),
        ('"reset"', RESET),
        ("Reset\n", RESET),
        ("\treset\r\n", RESET),
        ("\uff32\uff25\uff33\uff25\uff34", RESET),  # full-width RESET, East Asian keyboards
        ("password", RESET),
        ("Password please", RESET),
        ("new password", RESET),
        ("New password pls", RESET),
        ("I forgot my password", RESET),
        ("hi, I forgot my password!", RESET),
        ("help me reset my password", RESET),
        ("Reset my pwd", RESET),
        ("unlock", UNLOCK),
        ("UNLOCK!", UNLOCK),
        ("Unlock my account please", UNLOCK),
        ("please unblock me", UNLOCK),
        # Dutch
        ("wachtwoord", RESET),
        ("Wachtwoord vergeten", RESET),
        ("wachtwoord vergeten!", RESET),
        ("Nieuw wachtwoord", RESET),
        ("herstel", RESET),
        ("Herstel wachtwoord aub", RESET),
        ("ontgrendel", UNLOCK),
        ("Ontgrendelen", UNLOCK),
        ("deblokkeer mijn account", UNLOCK),
        ("hulp", HELP),
        # Spanish
        ("restablecer", RESET),
        ("Restablecer contraseña", RESET),
        ("contraseña", RESET),
        ("CONTRASEÑA", RESET),
        ("contrasena", RESET),
        ("clave", RESET),
        ("Nueva contraseña por favor", RESET),
        ("olvidé mi contraseña", RESET),
        ("desbloquear", UNLOCK),
        ("Desbloquear cuenta", UNLOCK),
        ("ayuda", HELP),
        ("¡Ayuda!", HELP),
        # German
        ("zurücksetzen", RESET),
        ("Zurucksetzen", RESET),
        ("ZURÜCKSETZEN", RESET),
        ("Passwort", RESET),
        ("passwort vergessen", RESET),
        ("Kennwort zurücksetzen bitte", RESET),
        ("neues Passwort", RESET),
        ("entsperren", UNLOCK),
        ("Konto entsperren", UNLOCK),
        ("hilfe", HELP),
        # French
        ("Réinitialiser", RESET),
        ("reinitialiser", RESET),
        ("RÉINITIALISER", RESET),
        ("mot de passe", RESET),
        ("Mot de passe oublié", RESET),
        ("J'ai oublié mon mot de passe", RESET),
        ("nouveau mot de passe svp", RESET),
        ("mdp", RESET),
        ("débloquer", UNLOCK),
        ("Déverrouiller mon compte", UNLOCK),
        ("deverrouiller", UNLOCK),
        ("aide", HELP),
        ("Aide ?", HELP),
        # Twilio's help words are ours too.
        ("help", HELP),
        ("HELP", HELP),
        ("Help!", HELP),
        ("info", HELP),
        ("help me", HELP),
        ("Can I get some help", HELP),
        # Conflicts: the first of reset/unlock wins; either beats a help word.
        ("unlock password", UNLOCK),
        ("reset unlock", RESET),
        ("unlock and reset", UNLOCK),
        ("wachtwoord ontgrendelen", RESET),
        ("ontgrendelen wachtwoord", UNLOCK),
        ("aide mot de passe", RESET),
        ("hilfe entsperren", UNLOCK),
        # Nothing we know.
        ("", UNKNOWN),
        ("   ", UNKNOWN),
        ("\n\t", UNKNOWN),
        ("🙏", UNKNOWN),
        ("🙏🙏🙏 👍", UNKNOWN),
        ("?!.,", UNKNOWN),
        ("hello", UNKNOWN),
        ("what is this number", UNKNOWN),
        ("123456", UNKNOWN),
        ("resets", UNKNOWN),  # whole words only
        ("passe", UNKNOWN),
        ("de", UNKNOWN),
        ("mot", UNKNOWN),
    ],
)
def test_it_reads_the_action(body: str, action: Action) -> None:
    assert parse_keyword(body).action is action


@pytest.mark.parametrize(
    ("body", "language"),
    [
        ("password", "en"),
        ("new password", "en"),
        ("unlock", "en"),
        ("wachtwoord vergeten", "nl"),
        ("herstel", "nl"),
        ("ontgrendel", "nl"),
        ("deblokkeer", "nl"),
        ("hulp", "nl"),
        ("restablecer", "es"),
        ("contraseña", "es"),
        ("clave", "es"),
        ("desbloquear", "es"),
        ("ayuda", "es"),
        ("zurücksetzen", "de"),
        ("passwort", "de"),
        ("kennwort", "de"),
        ("entsperren", "de"),
        ("hilfe", "de"),
        ("réinitialiser", "fr"),
        ("mot de passe", "fr"),
        ("mdp", "fr"),
        ("débloquer", "fr"),
        ("déverrouiller", "fr"),
        ("aide", "fr"),
        # "reset" alone is used in every language; a later word can tell.
        ("reset", None),
        ("reset wachtwoord", "nl"),
        ("reset mot de passe", "fr"),
        ("RESET PASSWORD", "en"),
        # Twilio's reserved words carry no language.
        ("help", None),
        ("info", None),
        ("stop", None),
        ("start", None),
        ("hello", None),
    ],
)
def test_it_tells_the_language_when_the_word_does(body: str, language: str | None) -> None:
    assert parse_keyword(body).language == language


def test_it_returns_a_keyword() -> None:
    assert parse_keyword("Réinitialiser") == Keyword(Action.RESET, "fr")
    assert parse_keyword("nonsense") == Keyword(Action.UNKNOWN, None)


@pytest.mark.parametrize("word", TWILIO_OPT_OUT)
@pytest.mark.parametrize("shape", ["{}", " {} ", "{}.", "{}!", "🙏{}", "\n{}\n"])
def test_a_whole_message_opt_out_word_is_stop(word: str, shape: str) -> None:
    assert parse_keyword(shape.format(word)).action is STOP
    assert parse_keyword(shape.format(word.lower())).action is STOP
    assert parse_keyword(shape.format(word.title())).action is STOP


@pytest.mark.parametrize("word", TWILIO_OPT_IN)
def test_a_whole_message_opt_in_word_is_start(word: str) -> None:
    assert parse_keyword(word).action is START
    assert parse_keyword(f" {word.lower()}! ").action is START


@pytest.mark.parametrize("word", TWILIO_HELP)
def test_a_whole_message_help_word_is_help(word: str) -> None:
    assert parse_keyword(word).action is HELP
    assert parse_keyword(f"{word.lower()}?").action is HELP


def test_the_reserved_word_lists_are_twilios() -> None:
    assert {w.lower() for w in TWILIO_OPT_OUT} == OPT_OUT_WORDS
    assert {w.lower() for w in TWILIO_OPT_IN} == OPT_IN_WORDS
    assert {w.lower() for w in TWILIO_HELP} == RESERVED_HELP_WORDS


@pytest.mark.parametrize("word", TWILIO_OPT_OUT + TWILIO_OPT_IN + TWILIO_HELP)
def test_no_reserved_word_means_reset_or_unlock(word: str) -> None:
    for body in (word, word.lower(), f"{word} please", f"please {word}", f"{word} {word}"):
        assert parse_keyword(body).action not in {RESET, UNLOCK}, body


@pytest.mark.parametrize("word", TWILIO_OPT_OUT)
@pytest.mark.parametrize("template", ["{} please", "please {}", "{} {}"])
def test_an_opt_out_word_with_other_words_is_not_stop(word: str, template: str) -> None:
    # Twilio opts out only on the bare word, so we must not think otherwise.
    assert parse_keyword(template.format(word, word)).action is UNKNOWN


@pytest.mark.parametrize(
    "body",
    [
        "reset stop",
        "stop reset",
        "cancel reset",
        "Cancel my password reset",
        "unlock, quit",
        "mot de passe STOP",
        "wachtwoord stop",
        "END unlock",
    ],
)
def test_an_opt_out_word_vetoes_a_reset_or_unlock(body: str) -> None:
    assert parse_keyword(body) == Keyword(Action.UNKNOWN, None)


@pytest.mark.parametrize(
    ("body", "action"),
    [
        ("yes reset", RESET),
        ("start unlock", UNLOCK),
        ("info password", RESET),
        ("help unlock", UNLOCK),
        ("yes please", UNKNOWN),
        ("start now", UNKNOWN),
    ],
)
def test_opt_in_and_help_words_inside_a_message_do_not_block_a_keyword(
    body: str, action: Action
) -> None:
    assert parse_keyword(body).action is action


def test_it_reads_only_the_start_of_a_long_body() -> None:
    assert parse_keyword("x" * MAX_CHARS + " reset").action is UNKNOWN
    assert parse_keyword("reset " + "blah " * 1000).action is RESET
    assert parse_keyword("🙏" * 10_000).action is UNKNOWN


def test_a_keyword_must_start_within_the_first_few_words() -> None:
    assert parse_keyword("a b c d e f g password").action is RESET
    assert parse_keyword("a b c d e f g h i j password").action is UNKNOWN


def test_it_is_cheap_on_huge_bodies() -> None:
    body = "Réinitialiser " + "é" * 100_000
    started = time.perf_counter()
    for _ in range(1_000):
        parse_keyword(body)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("body", "action", "pin"),
    [
        ("RESET 4821", Action.RESET, "4821"),
        ("unlock 12345678 please", Action.UNLOCK, "12345678"),
        ("reset 123", Action.RESET, None),  # too short: no PIN
        ("reset 123456789", Action.RESET, None),  # too long
        ("PIN 4821", Action.PIN, None),  # a PIN is never set by text: digits dropped
        ("pincode 4821", Action.PIN, None),
        ("PIN", Action.PIN, None),
        ("help 4821", Action.HELP, None),  # only RESET and UNLOCK carry one
    ],
)
def test_a_reset_pin_rides_along(body: str, action: Action, pin: str | None) -> None:
    keyword = parse_keyword(body)
    assert (keyword.action, keyword.pin) == (action, pin)
    assert "4821" not in repr(keyword)
