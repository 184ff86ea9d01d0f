"""The one rule for matching an event's type and subject against patterns."""

from __future__ import annotations

from treadle.common.patterns import event_matches, has_wildcard, pattern_matches


def test_patterns_are_case_sensitive_shell_wildcards_over_the_whole_text() -> None:
    assert pattern_matches("crm.*", "crm.contact.created")
    assert pattern_matches("order-?", "order-7")
    assert pattern_matches("[ab]*", "beta")
    assert not pattern_matches("crm.*", "CRM.contact")
    assert not pattern_matches("crm", "crm.contact")


def test_a_missing_pattern_matches_anything_and_a_missing_text_is_empty() -> None:
    assert pattern_matches(None, None)
    assert pattern_matches(None, "anything")
    assert pattern_matches("*", None)
    assert not pattern_matches("acme", None)


def test_an_event_fits_when_both_its_type_and_its_subject_fit() -> None:
    assert event_matches("crm.created", "acme", type_pattern="crm.*", subject_pattern=None)
    assert event_matches("crm.created", None, type_pattern="crm.*", subject_pattern="*")
    assert not event_matches("crm.created", None, type_pattern="crm.*", subject_pattern="a*")
    assert not event_matches("ops.alert", "acme", type_pattern="crm.*", subject_pattern=None)
    assert event_matches("ops.alert", "acme", type_pattern=None, subject_pattern="ac*")


def test_wildcard_patterns_are_told_from_literal_ones() -> None:
    assert has_wildcard("crm.*")
    assert has_wildcard("order-?")
    assert has_wildcard("[ab]")
    assert not has_wildcard("crm.created")
