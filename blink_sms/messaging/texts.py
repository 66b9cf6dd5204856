"""The SMS texts the gateway sends, in English: these strings are the gettext msgids.

Render one for a user with :func:`blink_sms.messaging.i18n.translate`, e.g.
``translate("nl", texts.OTP, password=password)``. Placeholders use ``str.format``
syntax. RESET and UNLOCK are the keywords the gateway accepts in every language:
they stay in capitals and untranslated in every catalog.

After changing a text, refresh the template and the catalogs (from the repository root)::

    pybabel extract --no-location --add-comments=Translators: \\
        -o blink_sms/messaging/translations/messages.pot blink_sms/messaging/texts.py
    pybabel update --no-fuzzy-matching --ignore-obsolete \\
        -i blink_sms/messaging/translations/messages.pot -d blink_sms/messaging/translations

and translate the new entries. Every translation must use only the GSM 03.38 basic
character set (no á í ó ú ç ê ô ...), so that each message is sent as cheap GSM-7.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 -- the gettext convention that pybabel extracts
    """Mark ``message`` for translation without translating it (gettext no-op)."""
    return message


# Reply to RESET: the password reset has been queued.
ACK_RESET = N_("Got it. Your new password will arrive in a moment.")
# Reply to UNLOCK: the account unlock has been queued.
ACK_UNLOCK = N_("Got it. Your account will be unlocked in a moment.")
# Reply to a second RESET while the first one is still being processed.
RESET_PENDING = N_("Your new password is already on its way. Please wait a moment.")
# Translators: {wait} is a localised duration such as "45 minutes" or "1 hour".
RATE_LIMITED = N_("Too many requests from this phone. Please try again in {wait}.")
# Translators: keep RESET and UNLOCK in English capitals: they are the commands.
HELP = N_(
    "Password help by text: reply RESET for a new password, or UNLOCK to unlock your account."
)
# Reply to a phone number that belongs to no registered user.
UNKNOWN_SENDER = N_(
    "This number only serves registered users. Please contact your IT support desk."
)
# Translators: {password} is the one-time password. Keep the line break and stay short.
OTP = N_("Your new password: {password}\nYou must change it when you sign in.")
# Translators: {password} is the one-time password.
OTP_NO_CHANGE = N_("Your new password: {password}")
# Sent after the account has been unlocked.
UNLOCKED = N_("Your account is unlocked. You can sign in again.")
# Translators: {support} is how to reach the help desk, e.g. a phone number.
APOLOGY = N_("Sorry, we could not complete your request right now. Please contact {support}.")
# Reply to UNLOCK when the user's directory cannot unlock accounts.
UNLOCK_NOT_SUPPORTED = N_(
    "Your account cannot be unlocked by text. Reply RESET for a new password instead."
)
# Reply when a user who had opted out of messages (STOP) opts in again.
OPTED_IN = N_("You will receive our messages again. Reply RESET for a new password.")
# Translators: {code} is the 6-digit verification code sent during enrollment.
VERIFICATION_CODE = N_(
    "Your verification code is {code}. It works for 10 minutes. Never share it with anyone."
)
# Sent when a phone has just been bound. Keep RESET in English capitals: it is the command.
WELCOME = N_(
    "Your phone is set up. Save this number: text RESET to it whenever you need a new password."
)
# The same, where the user chose a reset PIN. Keep RESET as it is.
WELCOME_PIN = N_(
    "Your phone is set up. Save this number: text RESET and your PIN to it whenever you "
    "need a new password."
)
# Translators: {support} is how to reach the help desk. Sent when the organisation has
# turned password reset by text off: nothing was changed.
CLIENT_DISABLED = N_(
    "Password reset by text is turned off for your organisation. Please contact {support}."
)
# Translators: {username} is the account's sign-in name. Sent when the directory locks the
# account; keep UNLOCK and RESET in English capitals: they are the commands.
LOCKOUT_NOTICE = N_(
    "Your account {username} is locked. Reply UNLOCK to unlock it, or RESET for a new password."
)
# Translators: {username} is the account's sign-in name. The same notice where the
# directory cannot unlock by itself: a new password ends the lockout.
LOCKOUT_NOTICE_RESET = N_(
    "Your account {username} is locked. Reply RESET for a new password: that unlocks it too."
)
# Translators: {username} is the account's sign-in name; {when} a localised duration
# such as "3 days". Keep RESET in English capitals.
EXPIRY_REMINDER = N_(
    "Your password for {username} expires in {when}. Reply RESET for a new password."
)
# Translators: {username} is the account's sign-in name; {support} how to reach the help
# desk. Sent to the number that was bound before, when another one is bound.
PHONE_CHANGED = N_(
    "The phone number for your account {username} was changed. If this was not you, "
    "contact {support}."
)
# Translators: {support} is how to reach the help desk. Sent instead of the apology when
# the directory refuses to reset this account (an administrator, a guest, an account
# managed elsewhere, a disabled one): trying again by text will not help.
RESET_REFUSED = N_(
    "Your account cannot be reset by text. For a new password, please contact {support}."
)
# Translators: {support} is how to reach the help desk. The organisation now asks for a
# reset PIN and this user, enrolled before, has none: it is chosen on the activation page.
PIN_REQUIRED = N_(
    "Your organisation now asks for a reset PIN, chosen when you set up your phone. "
    "Please ask {support} for a new activation link."
)
# Reply to RESET or UNLOCK without the user's reset PIN, or with a wrong one. Keep RESET,
# UNLOCK and the example as they are.
PIN_WRONG = N_(
    "That PIN is missing or not right. Text RESET or UNLOCK followed by your reset PIN, "
    "e.g. RESET 4821."
)
# Translators: {support} is how to reach the help desk. Sent after 5 wrong PINs in a day.
PIN_BLOCKED = N_(
    "Too many wrong PINs: resets by text are blocked for 24 hours. Please contact {support}."
)
# Translators: {support} is how to reach the help desk. Reply to a text starting with
# PIN: a reset PIN is chosen on the activation page, never by text.
PIN_BY_LINK = N_(
    "Reset PINs are chosen on the activation page, not by text. To set or change yours, "
    "ask {support} for a new activation link."
)
