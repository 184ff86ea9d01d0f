"""Stub action for the loader tests (never run by them)."""


def greet(who: str, shout: bool = False) -> dict[str, str]:
    text = f"hello {who}"
    return {"greeting": text.upper() if shout else text}
