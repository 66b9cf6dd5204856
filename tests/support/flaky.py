"""A job that fails on its first run and succeeds on the next (for retry tests)."""

from __future__ import annotations

from pathlib import Path


def fail_once(marker: str) -> str:
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once", encoding="utf-8")
        raise RuntimeError("the first run fails on purpose")
    return "done on the retry"
