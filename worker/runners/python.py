"""Runs Python actions: ``entry_point: "file.py:function"``, called with the parameters.

Action files are loaded from the pack folder (not from an installed package), once per
process, under a stable module name such as ``treadle_actions.core.echo``. The embedded
runner calls actions from a thread pool, so loading is serialised by a lock and a module
is never executed twice; a file that fails to import is not remembered, so fixing it and
dispatching again works without restarting the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_file_location
from types import CodeType, ModuleType, TracebackType
from typing import Any

from treadle.common.spec import ActionSpec
from treadle.worker.attempt_context import running
from treadle.worker.errors import ActionError
from treadle.worker.runners.base import ActionCall

MODULE_PREFIX = "treadle_actions"
TRACEBACK_LINES = 20


class _FreshSourceLoader(SourceFileLoader):
    """Compiles the file's current source every time, never a ``__pycache__`` copy.

    A file fixed within the same second as a failed load would otherwise be read back
    from a stale bytecode cache; and packs stay free of ``__pycache__`` folders.
    """

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


class PythonRunner:
    """Loads action modules on first use (thread-safe) and calls ``function(**params)``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._modules: dict[str, ModuleType] = {}
        self._functions: dict[tuple[str | None, str | None], Callable[..., Any]] = {}

    def run(self, action: ActionSpec, params: dict[str, Any], context: ActionCall) -> Any:
        function = self.resolve(action)
        try:
            with running(context.dispatch):  # current_attempt() in the action
                if inspect.iscoroutinefunction(function):
                    return asyncio.run(function(**params))
                return function(**params)
        except (Exception, SystemExit) as exc:
            if _terminating():
                raise  # the process is being stopped (a revoke with terminate): let it end
            raise action_code_error(exc, skip_frames=1) from None

    def resolve(self, action: ActionSpec) -> Callable[..., Any]:
        """The function ``action.entry_point`` names, loading its file if needed."""
        key = (action.base_dir, action.entry_point)
        function = self._functions.get(key)
        if function is None:
            function = self._resolve(action)
            self._functions[key] = function
        return function

    def _resolve(self, action: ActionSpec) -> Callable[..., Any]:
        path, function_name = _split_entry_point(action)
        module = self._module(action, path)
        function = getattr(module, function_name, None)
        if function is None:
            raise ActionError(
                "ActionImportError",
                f"{path} defines no function '{function_name}' "
                f"(entry point of action '{action.ref}')",
            )
        if not callable(function):
            raise ActionError(
                "ActionImportError",
                f"'{function_name}' in {path} is not a function "
                f"(entry point of action '{action.ref}')",
            )
        return function  # type: ignore[no-any-return]

    def loaded_modules(self) -> dict[str, str]:
        """Module name by file path, of every action file loaded so far."""
        return {path: module.__name__ for path, module in self._modules.items()}

    def _module(self, action: ActionSpec, path: str) -> ModuleType:
        module = self._modules.get(path)
        if module is not None:
            return module
        with self._lock:
            module = self._modules.get(path)  # another thread may have loaded it meanwhile
            if module is None:
                module = self._load(action, path)
                self._modules[path] = module
            return module

    def _load(self, action: ActionSpec, path: str) -> ModuleType:
        if not os.path.isfile(path):
            raise ActionError(
                "ActionImportError",
                f"action '{action.ref}': entry point file {path} does not exist",
            )
        name = self._module_name(action, path)
        loader = _FreshSourceLoader(name, path)
        spec = spec_from_file_location(name, path, loader=loader)
        if spec is None:  # pragma: no cover - only for paths importlib cannot handle
            raise ActionError("ActionImportError", f"cannot load {path} as a Python module")
        module = module_from_spec(spec)
        folder = os.path.dirname(path)
        sys.modules[name] = module
        sys.path.insert(0, folder)  # sibling modules of the action file are importable
        try:
            loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            if not isinstance(exc, Exception | SystemExit) or _terminating():
                raise
            raise ActionError(
                "ActionImportError",
                f"cannot import {path} for action '{action.ref}': {type(exc).__name__}: {exc}",
                {
                    "exception": type(exc).__name__,
                    "traceback": _traceback_text(exc, exc.__traceback__),
                },
            ) from None
        finally:
            with contextlib.suppress(ValueError):  # unless the module removed it itself
                sys.path.remove(folder)
        return module

    def _module_name(self, action: ActionSpec, path: str) -> str:
        """``treadle_actions.<pack>.<file>``, plus a hash of the path if that name is taken
        (two packs with the same ref loaded from different folders)."""
        base_dir = os.path.realpath(action.base_dir) if action.base_dir else os.path.dirname(path)
        relative = os.path.relpath(path, base_dir)
        if relative.startswith(".."):
            relative = os.path.basename(path)
        stem = os.path.splitext(relative)[0].replace(os.sep, ".")
        parts = [_identifier(part) for part in (action.pack or "_", *stem.split("."))]
        name = ".".join([MODULE_PREFIX, *parts])
        taken = sys.modules.get(name)
        if taken is not None and getattr(taken, "__file__", None) != path:
            name += "_" + hashlib.sha256(path.encode()).hexdigest()[:8]
        return name


def _terminating() -> bool:
    """Whether this process is a worker pool process being stopped by a signal.

    The prefork pool's signal handler (a revoke with ``terminate``, a worker shutdown)
    raises SystemExit inside whatever runs. Turning that into a failed attempt would keep
    the process alive after it was told to stop, with billiard's "terminating" flag left
    set: a later action's own exception would then be reported as a lost worker and its
    task delivered again. An action's own ``sys.exit()`` is still an action error.
    """
    pool = sys.modules.get("billiard.common")  # loaded in pool processes only
    fired = getattr(pool, "terminate_handler_fired", None)
    return bool(fired()) if callable(fired) else False


def action_code_error(exc: BaseException, *, skip_frames: int = 0) -> ActionError:
    """An exception raised by action code, as users see it: its class name, its message,
    and the last lines of the traceback (starting below the runner's own frames)."""
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    return ActionError(
        type(exc).__name__,
        str(exc) or type(exc).__name__,
        {"traceback": _traceback_text(exc, tb)},
    )


def _traceback_text(exc: BaseException, tb: TracebackType | None) -> str:
    lines = "".join(traceback.format_exception(type(exc), exc, tb)).splitlines()
    return "\n".join(lines[-TRACEBACK_LINES:])


def _split_entry_point(action: ActionSpec) -> tuple[str, str]:
    entry = action.entry_point
    if not entry or ":" not in entry:
        raise ActionError(
            "ActionImportError",
            f"action '{action.ref}' needs an entry_point of the form 'file.py:function'"
            + (f", not {entry!r}" if entry else ""),
        )
    file_part, _, function_name = entry.rpartition(":")
    if not file_part or not function_name.isidentifier():
        raise ActionError(
            "ActionImportError",
            f"action '{action.ref}': entry_point {entry!r} is not of the form 'file.py:function'",
        )
    if os.path.isabs(file_part):
        return os.path.realpath(file_part), function_name
    if action.base_dir is None:
        raise ActionError(
            "ActionImportError",
            f"action '{action.ref}' has a relative entry_point but no folder to resolve it in",
        )
    return os.path.realpath(os.path.join(action.base_dir, file_part)), function_name


def _identifier(text: str) -> str:
    cleaned = re.sub(r"\W", "_", text)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"
