"""One-time passwords that survive being read off a phone and typed on a PC.

The user reads the password on a small phone screen and types it into a Windows
logon screen, often on a French, German or Spanish keyboard. So the alphabet
(:data:`ALPHABET`) leaves out every character that can be mistaken for another:

* ``0 O o Q q`` (round shapes), ``1 l I i |`` (strokes), ``5 S s``, ``2 Z z``,
  ``8 B``, ``6 b``, ``9 g``;
* ``u v U V`` (u/v), ``r`` (``rn`` reads as ``m``);
* letters whose capital looks like the small one on a phone screen
  (``c k p w x y``) appear only as capitals, and ``J`` only as ``j``.

That leaves ``ACDEFGHKLMNPRTWXY`` + ``adefhjmnt`` + ``34679`` + ``!%+-=?``. The
symbols are on the unshifted or shifted layer of QWERTY, QWERTZ and AZERTY
keyboards (no AltGr, so no ``# @``) and are all in the GSM 03.38 basic table, so
the SMS stays 7-bit (160 characters a segment; one character outside it makes the
whole message UCS-2, 70 a segment). A password never starts with a symbol
(autocorrect and keyboards capitalise or swap a leading one).

Every password has all four classes (upper, lower, digit, symbol), so any "3 of 4"
complexity rule (Active Directory, Entra ID) passes, and it never contains a
3+ character token of the username or display name (Active Directory's rule).
Length 12 gives about 62 bits of entropy from a 37-character alphabet.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

from directory_adapters import PasswordPolicy

# GSM 03.38 default alphabet, basic table only (one septet per character). The
# extension table (^ { } \ [ ~ ] | €, reached through ESC) costs two septets and
# is not always rendered, so it is left out, as is ESC itself. 0x09 is "Ç" in the
# standard but phones show "ç" or "Ç"; texts had better use neither.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

UPPER = "ACDEFGHKLMNPRTWXY"
LOWER = "adefhjmnt"
DIGITS = "34679"
SYMBOLS = "!%+-=?"
ALPHABET = UPPER + LOWER + DIGITS + SYMBOLS
_CLASSES = (UPPER, LOWER, DIGITS, SYMBOLS)

# Active Directory splits the display name on these before its "contains the
# user's name" check, and ignores tokens shorter than three characters.
_AD_DELIMITERS = re.compile(r"[,.\-_ #\t]+")
_MIN_TOKEN = 3
# With any realistic username the first attempt almost always succeeds; a bound
# keeps a pathological ``avoid`` (say, "ade" in a 500-character password) finite.
_MAX_ATTEMPTS = 10_000

_random = secrets.SystemRandom()


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 basic table."""
    return all(ch in GSM7_BASIC for ch in text)


def _forbidden_tokens(avoid: Sequence[str]) -> set[str]:
    tokens: set[str] = set()
    for value in avoid:
        # The whole value too: AD checks the sAMAccountName unsplit.
        for token in (value.strip(), *_AD_DELIMITERS.split(value)):
            if len(token) >= _MIN_TOKEN:
                tokens.add(token.casefold())
    return tokens


def _candidate(length: int) -> str:
    chars = [secrets.choice(cls) for cls in _CLASSES]
    chars += [secrets.choice(ALPHABET) for _ in range(length - len(chars))]
    _random.shuffle(chars)
    return "".join(chars)


def generate_password(policy: PasswordPolicy, *, length: int, avoid: Sequence[str] = ()) -> str:
    """A random password of ``max(length, policy.min_length)`` characters.

    It has at least one upper-case letter, lower-case letter, digit and symbol,
    uses only :data:`ALPHABET`, does not start with a symbol, and contains no
    3+ character token of any ``avoid`` string (username, display name), compared
    case-insensitively. Lengths below four are raised to four, one per class.
    Raises ``RuntimeError`` only if ``avoid`` makes a valid password practically
    impossible.
    """
    length = max(length, policy.min_length, len(_CLASSES))
    forbidden = _forbidden_tokens(avoid)
    for _ in range(_MAX_ATTEMPTS):
        # Start over rather than patch a candidate, so no position is predictable.
        password = _candidate(length)
        if password[0] in SYMBOLS:
            continue
        folded = password.casefold()
        if any(token in folded for token in forbidden):
            continue
        return password
    raise RuntimeError("could not generate a password that avoids the given names")
