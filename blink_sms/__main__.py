"""``python -m blink_sms`` is the ``blink-sms`` command."""

from blink_sms.cli import main

main()
