"""Command groups of ``blink-sms`` beyond the basics in :mod:`blink_sms.cli`."""
