"""Start-up objects frozen out of the collector's walks, only in a process treadle owns."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from treadle.common import heap


class Node:
    """An object the collector tracks; two of them referring to each other make a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def claimed() -> Iterator[None]:
    """This test process claimed, then released and unfrozen (the rest of the suite keeps
    its collector as it was)."""
    heap.claim_process()
    try:
        yield
    finally:
        heap._claimed[0] = False
        gc.unfreeze()


def test_what_start_up_keeps_is_frozen_and_its_garbage_collected_first(claimed: None) -> None:
    kept = Node()
    garbage_a, garbage_b = Node(), Node()
    garbage_a.other, garbage_b.other = garbage_b, garbage_a  # a cycle nobody refers to
    gone = weakref.ref(garbage_a)
    del garbage_a, garbage_b

    frozen = heap.freeze_start_up()

    assert frozen > 0
    assert gone() is None  # collected, not frozen for the process's lifetime
    assert not any(o is kept for o in gc.get_objects(generation=2))  # no walk sees it
    after = Node()
    assert any(o is after for o in gc.get_objects())  # what work makes is collected as usual


def test_a_process_treadle_did_not_start_is_left_alone() -> None:
    # The CLI run in-process (tests) or embedded in an application: nothing is frozen.
    before = gc.get_freeze_count()
    assert heap.freeze_start_up() == 0
    assert gc.get_freeze_count() == before


def test_treadle_s_entry_point_claims_its_process(
    claimed: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from treadle.cli.main import main

    heap._claimed[0] = False
    monkeypatch.setattr("sys.argv", ["treadle", "--help"])
    with pytest.raises(SystemExit):
        main()
    assert "Usage" in capsys.readouterr().out
    assert heap._claimed[0] is True  # a command's freeze_start_up now acts
