"""Keeping what an action writes to stdout and stderr while it runs, bounded and redacted.

The worker runs an attempt inside :func:`capturing`; what the action writes meanwhile is
copied into the attempt's :class:`OutputCapture` and reported with its result
(:class:`~treadle.common.messages.ActionOutput`), so people can read it on the task's page.

Python actions run in the worker's own process, on whichever thread the pool gives them:
a prefork child runs one attempt at a time, but the ``threads`` pool and the embedded
runner run several at once in one process, so redirecting ``sys.stdout`` to one attempt's
buffer would mix them up. Instead ``sys.stdout`` and ``sys.stderr`` are replaced, once per
process, by an :class:`AttemptStream` that writes to the stream it replaced (so the lines
still reach the worker's log or the terminal, as before) and also to the capture of the
attempt the *calling context* runs (a context variable: per thread, inherited by the
asyncio tasks of an ``async def`` action, not by threads the action starts itself).
Output written below Python's ``sys.stdout`` (``os.write(1, ...)``, C libraries, a child
process given the worker's file descriptors, ``sys.stdout.buffer``) is not seen.

Shell actions hand their child process's output over with :meth:`OutputCapture.add`.

Each stream keeps its last ``limit`` bytes (UTF-8): the end of an output is what explains
how it ended. Secret values are blanked out (``***``) before the cut, so a secret cut in
two at the start is never shown in part.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar, Token
from typing import Any, Literal, TextIO, cast

from treadle.common.messages import ActionOutput, storable_text
from treadle.common.redaction import REDACTED, redact
from treadle.common.secret_refs import MARKER, mask_references

__all__ = ["AttemptStream", "OutputCapture", "capturing", "current_capture"]

Stream = Literal["stdout", "stderr"]

_CURRENT: ContextVar[OutputCapture | None] = ContextVar("treadle_output", default=None)
_INSTALLING = threading.Lock()


class _Tail:
    """The last ``keep`` characters written (at most about twice that held meanwhile)."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._parts: list[str] = []
        self._chars = 0
        #: Whether anything written was dropped.
        self.cut = False

    def add(self, text: str) -> None:
        self._parts.append(text)
        self._chars += len(text)
        if self._chars > 2 * self._keep:
            kept = "".join(self._parts)[-self._keep :]
            self._parts = [kept]
            self._chars = len(kept)
            self.cut = True

    def text(self) -> str:
        return "".join(self._parts)


class OutputCapture:
    """One attempt's stdout and stderr: the last ``limit`` bytes of each, ``secrets``
    (longest first) blanked out. Safe to write from several threads."""

    def __init__(self, limit: int, secrets: tuple[str, ...] = ()) -> None:
        if limit <= 0:
            raise ValueError("an output capture needs a limit of at least one byte")
        self._limit = limit
        self._secrets = secrets
        # Characters that may hold the end of a secret cut in two when the head is dropped.
        self._margin = max((len(secret) for secret in secrets), default=0)
        self._keep = limit + self._margin  # a character is at least one byte
        self._streams: dict[Stream, _Tail] = {}  # made by the first write (most write none)
        self._lock = threading.Lock()

    def add(self, stream: Stream, text: str) -> None:
        """Keep ``text`` as written to ``stream``."""
        if text:
            with self._lock:
                tail = self._streams.get(stream)
                if tail is None:
                    tail = self._streams[stream] = _Tail(self._keep)
                tail.add(text)

    def output(self) -> ActionOutput | None:
        """What was kept, redacted and bounded; None when nothing was written."""
        if not self._streams:
            return None
        with self._lock:
            stdout, stdout_cut = self._finished(self._streams.get("stdout"))
            stderr, stderr_cut = self._finished(self._streams.get("stderr"))
        if not (stdout or stderr):
            return None
        return ActionOutput(
            stdout=stdout,
            stderr=stderr,
            stdout_truncated=stdout_cut,
            stderr_truncated=stderr_cut,
        )

    def _finished(self, tail: _Tail | None) -> tuple[str, bool]:
        if tail is None:
            return "", False
        text = tail.text()
        cut = tail.cut
        if cut:  # its first characters may be the end of a secret whose start was dropped
            text = text[self._margin :]
        if self._secrets:
            text = redact(text, self._secrets)
        elif MARKER in text:
            text = mask_references(text, REDACTED)
        data = storable_text(text).encode("utf-8")
        if len(data) > self._limit:
            data = data[-self._limit :]
            start = 0
            while start < len(data) and data[start] & 0xC0 == 0x80:  # inside a character
                start += 1
            data = data[start:]
            cut = True
        return data.decode("utf-8"), cut


class AttemptStream:
    """Stands in for ``sys.stdout`` or ``sys.stderr``: writes go to the stream it replaced
    and, on a thread capturing an attempt, to that attempt's capture too. Everything else
    (``fileno``, ``encoding``, ``isatty``, ``buffer``...) is the replaced stream's."""

    def __init__(self, stream: Stream, replaced: TextIO | None) -> None:
        self._stream: Stream = stream
        self._replaced = replaced

    @property
    def replaced(self) -> TextIO | None:
        return self._replaced

    def write(self, text: str) -> int:
        capture = _CURRENT.get()
        if capture is not None and isinstance(text, str):
            capture.add(self._stream, text)
        if self._replaced is None:  # no stream at all (a daemon's): the copy is kept
            return len(text)
        return self._replaced.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._replaced is not None:
            self._replaced.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._replaced, name)


def current_capture() -> OutputCapture | None:
    """The capture of the attempt the calling context runs (None outside one, or off)."""
    return _CURRENT.get()


def capturing(capture: OutputCapture | None) -> AbstractContextManager[OutputCapture | None]:
    """Within the block, this context's writes to ``sys.stdout``/``sys.stderr`` are kept in
    ``capture`` too (nothing happens for None: capture is off)."""
    return _Capturing(capture) if capture is not None else nullcontext()


class _Capturing:
    """:func:`capturing` for one attempt (a class: entered once per attempt, it is cheaper
    than a generator-based context manager)."""

    def __init__(self, capture: OutputCapture) -> None:
        self._capture = capture
        self._token: Token[OutputCapture | None] | None = None

    def __enter__(self) -> OutputCapture:
        _install()
        self._token = _CURRENT.set(self._capture)
        return self._capture

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None


def _install() -> None:
    """Put an :class:`AttemptStream` in front of ``sys.stdout`` and ``sys.stderr`` unless
    one is there already (again if something replaced it since: a test's capture, an
    action that swapped the stream)."""
    if isinstance(sys.stdout, AttemptStream) and isinstance(sys.stderr, AttemptStream):
        return
    with _INSTALLING:
        if not isinstance(sys.stdout, AttemptStream):
            sys.stdout = cast(TextIO, AttemptStream("stdout", sys.stdout))
        if not isinstance(sys.stderr, AttemptStream):
            sys.stderr = cast(TextIO, AttemptStream("stderr", sys.stderr))
