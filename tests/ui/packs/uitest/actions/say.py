"""uitest.say: prints, so a task's page has captured output to show."""

from __future__ import annotations

import sys


def say(text: str) -> dict[str, str]:
    print(f"saying: {text}")
    print("a warning on stderr", file=sys.stderr)
    return {"said": text}
