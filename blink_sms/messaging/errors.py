"""The error every outbound channel raises: whether trying again can help, and the vendor's code."""

from __future__ import annotations


class DeliveryError(Exception):
    """Sending failed. ``permanent`` errors are not retried; ``code`` is the vendor's
    (a Twilio error code, an SMTP reply code). The message is log detail, never the body."""

    def __init__(self, message: str, *, code: int | None = None, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent
