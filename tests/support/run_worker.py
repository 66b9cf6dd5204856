"""Run ``blink-sms worker --burst`` in a process of its own, with Twilio's REST API faked.

Usage: python -m tests.support.run_worker OUT.json ACCOUNT_SID
Settings come from BLINK_* variables. What the worker sent is written to OUT.json.
"""

from __future__ import annotations

import json
import sys

import responses

from blink_sms.cli import cli
from tests.support.fake_twilio import FakeTwilio


def main() -> None:
    out, account_sid = sys.argv[1], sys.argv[2]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeTwilio(account_sid).install(rsps)
        try:
            cli(["worker", "--burst"], standalone_mode=False)
        finally:
            with open(out, "w", encoding="utf-8") as file:
                json.dump(fake.sent, file)


if __name__ == "__main__":
    main()
