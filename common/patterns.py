"""How an event's type and subject match the patterns that select events.

Event waits (``wait_for: {event: ...}``, ``core.wait_for_event``), event triggers, the
store's routing of events to waits and ``treadle events list`` all select events by a type
pattern and a subject pattern. They must agree on what matches, or an event would release
a wait that its trigger (or the listing) says it does not fit; so the rule lives here once:

* patterns are shell-style wildcards (``crm.*``, ``order-?``, ``[ab]*``), matched
  case-sensitively against the whole text (:func:`fnmatch.fnmatchcase`);
* a missing pattern (``None``) matches anything;
* an event without a subject is matched as the empty text, so a subject pattern takes it
  only when the pattern matches ``""`` (``*`` does).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

#: Characters that make a pattern a wildcard pattern; one without them matches only itself.
WILDCARDS = ("*", "?", "[")


def has_wildcard(pattern: str) -> bool:
    """Whether ``pattern`` can match more than the text it spells."""
    return any(w in pattern for w in WILDCARDS)


def pattern_matches(pattern: str | None, text: str | None) -> bool:
    """Whether ``text`` fits ``pattern`` (``None`` matches anything; no text is ``""``)."""
    return pattern is None or fnmatchcase(text or "", pattern)


def event_matches(
    event_type: str,
    subject: str | None,
    *,
    type_pattern: str | None,
    subject_pattern: str | None,
) -> bool:
    """Whether an event of ``event_type`` and ``subject`` fits both patterns."""
    return pattern_matches(type_pattern, event_type) and pattern_matches(subject_pattern, subject)
