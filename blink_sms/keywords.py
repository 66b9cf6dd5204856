"""What an inbound SMS asks for: turn a messy text body into an :class:`Action`.

People text from phones in five languages, with autocorrect, emoji and politeness,
so the parser is tolerant: it folds case and accents (NFKD, combining marks
dropped), treats punctuation and emoji as spaces, and looks only at the start of
the message.

The rules, in order:

1. **Twilio's reserved words are whole-message only.** Twilio acts on STOP,
   UNSUBSCRIBE, END, QUIT, STOPALL, REVOKE, OPTOUT, CANCEL (opt out), START, YES,
   UNSTOP (opt in) and HELP, INFO (help) only when they are the entire body;
   "STOP PLEASE" does not opt anyone out. We mirror that, after normalisation, so
   our idea of who opted out does not drift from Twilio's: "stop" -> ``STOP``,
   "Stop!" -> ``STOP``. Where Twilio may be stricter (punctuation, emoji), we err
   towards honouring the opt-out.
2. **An opt-out word anywhere else vetoes the message.** "cancel reset", "reset
   stop" or "please quit" are not opt-outs (Twilio ignores them) but must not change
   a password either, so they are ``UNKNOWN`` and the caller answers with help.
3. **Otherwise scan the first few words** for a RESET or UNLOCK keyword; phrases
   such as "mot de passe" or "nieuw wachtwoord" count. When both occur, the first
   in the text wins ("unlock password" -> ``UNLOCK``). RESET/UNLOCK beat a help word
   ("help me reset my password" -> ``RESET``); a help word alone gives ``HELP``.
   The language comes from the first keyword that tells it, so "reset wachtwoord"
   is RESET in Dutch although "reset" alone is language-neutral.
4. Nothing recognised, an empty body or only emoji -> ``UNKNOWN``.
5. **A reset PIN** rides along: the first word of 4 to 8 digits among the first few
   words is ``Keyword.pin`` ("RESET 4821", "unlock 4821 please"). ``PIN`` (also
   "pincode") asks about PINs: action ``PIN``, whose digits are dropped (a PIN is
   chosen on the activation page, never by text). The PIN is never part of the
   keyword's repr, so it cannot reach a log.

Negation is not understood ("don't reset" is ``RESET``); the reset still needs the
enrolled phone, and the reply tells the user what happened.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field


class Action(enum.Enum):
    """What the sender wants."""

    RESET = "reset"
    UNLOCK = "unlock"
    HELP = "help"
    STOP = "stop"
    START = "start"
    PIN = "pin"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Keyword:
    """A parsed message: the action and, when the word tells it, its language.

    ``language`` is one of ``"en"``, ``"nl"``, ``"es"``, ``"de"``, ``"fr"``, or ``None``
    for words shared across languages ("reset", "help", "stop") and for ``UNKNOWN``.
    ``pin`` is the reset PIN the text carried, if any (rule 5).
    """

    action: Action
    language: str | None
    pin: str | None = field(default=None, repr=False)


UNKNOWN = Keyword(Action.UNKNOWN, None)

# Only this much of the body is read: keywords come first, and a 1,600-character
# concatenated SMS should cost no more than a short one.
MAX_CHARS = 64
# A keyword (or the first word of a phrase) must start within this many words.
MAX_WORDS = 8

# Twilio's reserved words, matched only as the whole message (rule 1).
OPT_OUT_WORDS = frozenset(
    {"stop", "unsubscribe", "end", "quit", "stopall", "revoke", "optout", "cancel"}
)
OPT_IN_WORDS = frozenset({"start", "yes", "unstop"})
RESERVED_HELP_WORDS = frozenset({"help", "info"})

# Written as people type them; normalised by _normalise() when the tables are built.
# None: the word is used in several of our languages.
_PHRASES: dict[Action, dict[str | None, tuple[str, ...]]] = {
    Action.RESET: {
        None: ("reset",),
        "en": ("password", "new password", "passwd", "pwd"),
        "nl": ("wachtwoord", "nieuw wachtwoord", "herstel", "herstellen", "resetten"),
        "es": ("restablecer", "contraseña", "clave", "nueva contraseña", "nueva clave", "resetear"),
        "de": ("zurücksetzen", "passwort", "kennwort", "neues passwort", "neues kennwort"),
        "fr": ("réinitialiser", "réinitialisation", "mot de passe", "mdp", "nouveau mot de passe"),
    },
    Action.UNLOCK: {
        "en": ("unlock", "unblock"),
        "nl": ("ontgrendel", "ontgrendelen", "deblokkeer", "deblokkeren"),
        "es": ("desbloquear", "desbloqueo"),
        "de": ("entsperren", "entsperre", "entsperrung"),
        "fr": ("débloquer", "déverrouiller", "déverrouillage", "déblocage"),
    },
    Action.PIN: {None: ("pin", "pincode")},
    Action.HELP: {
        # "help" is English and Dutch alike; "info" is universal.
        None: ("help", "info"),
        "nl": ("hulp",),
        "es": ("ayuda",),
        "de": ("hilfe",),
        "fr": ("aide",),
    },
}


def _normalise(text: str) -> str:
    """Fold case and accents; punctuation, symbols and emoji become single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = (
        ch if ch.isalnum() else " " for ch in decomposed.casefold() if not unicodedata.combining(ch)
    )
    return " ".join("".join(kept).split())


def _build_phrase_table() -> dict[tuple[str, ...], Keyword]:
    table: dict[tuple[str, ...], Keyword] = {}
    for action, by_language in _PHRASES.items():
        for language, phrases in by_language.items():
            for phrase in phrases:
                words = tuple(_normalise(phrase).split())
                if words in table:
                    raise ValueError(f"keyword {phrase!r} is listed twice")
                table[words] = Keyword(action, language)
    return table


_PHRASE_TABLE = _build_phrase_table()
_LONGEST_PHRASE = max(len(words) for words in _PHRASE_TABLE)
_WHOLE_MESSAGE = {
    **{word: Keyword(Action.STOP, None) for word in OPT_OUT_WORDS},
    **{word: Keyword(Action.START, None) for word in OPT_IN_WORDS},
    **{word: Keyword(Action.HELP, None) for word in RESERVED_HELP_WORDS},
}
# No reserved opt-out/opt-in word may mean anything else, even inside a phrase.
if any(set(words) & (OPT_OUT_WORDS | OPT_IN_WORDS) for words in _PHRASE_TABLE):
    raise ValueError("a Twilio opt-out/opt-in word is reused as a keyword")


def parse_keyword(body: str) -> Keyword:
    """Read what an inbound SMS body asks for; see the module docstring for the rules."""
    words = _normalise(body[:MAX_CHARS]).split()
    if not words:
        return UNKNOWN
    if len(words) == 1 and words[0] in _WHOLE_MESSAGE:
        return _WHOLE_MESSAGE[words[0]]
    if not OPT_OUT_WORDS.isdisjoint(words):
        return UNKNOWN

    found = _scan(words)
    action: Action | None = next((k.action for k in found if k.action is not Action.HELP), None)
    if action is None:
        action = Action.HELP if found else Action.UNKNOWN
    # "reset wachtwoord": the first keyword decides the action, any keyword the language.
    language = next((k.language for k in found if k.language), None)
    return Keyword(action, language, _pin(words) if action in _WITH_PIN else None)


_WITH_PIN = frozenset({Action.RESET, Action.UNLOCK})
_PIN_SIZES = range(4, 9)


def _pin(words: list[str]) -> str | None:
    """The first word of 4 to 8 ASCII digits among the first ``MAX_WORDS`` words."""
    return next(
        (w for w in words[:MAX_WORDS] if len(w) in _PIN_SIZES and w.isascii() and w.isdigit()),
        None,
    )


def _scan(words: list[str]) -> list[Keyword]:
    """Keywords and phrases starting within the first ``MAX_WORDS`` words, in order."""
    found: list[Keyword] = []
    start = 0
    while start < min(len(words), MAX_WORDS):
        for size in range(min(_LONGEST_PHRASE, len(words) - start), 0, -1):
            keyword = _PHRASE_TABLE.get(tuple(words[start : start + size]))
            if keyword is not None:
                found.append(keyword)
                start += size
                break
        else:
            start += 1
    return found
