"""Runs shell actions: a command line (``core.shell``) or a pack's script, if enabled.

Off unless the worker's settings enable it (``TREADLE_SHELL_ENABLED=true``), because it runs
whatever a workflow author writes with the worker's privileges. Each command runs in its
own process group so a timeout kills the whole pipeline, not just ``/bin/sh``. What the
command writes to stdout and stderr is its result, and also the attempt's captured output
(:mod:`treadle.worker.output_capture`), whether it succeeds, fails or times out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from typing import Any

from treadle.common.spec import ActionSpec
from treadle.worker.errors import ActionError
from treadle.worker.output_capture import current_capture
from treadle.worker.runners.base import TIMEOUT_GRACE_SECONDS, ActionCall, seconds_parameter

SHELL = "/bin/sh"
PARAM_ENV_PREFIX = "TREADLE_PARAM_"
#: The variable holding the attempt's idempotency key (actions with ``side_effects: true``).
IDEMPOTENCY_ENV = "TREADLE_IDEMPOTENCY_KEY"
STDERR_TAIL_CHARS = 500
# Parameters that steer the process rather than being handed to it only.
CONTROL_PARAMETERS = ("env", "cwd", "timeout")


class ShellRunner:
    """``/bin/sh -c cmd`` for actions without an entry point, else the entry-point script."""

    def run(self, action: ActionSpec, params: dict[str, Any], context: ActionCall) -> Any:
        if not context.settings.shell_enabled:
            raise ActionError(
                "ShellDisabled",
                "shell actions are disabled; set TREADLE_SHELL_ENABLED=true to allow them",
            )
        argv, default_cwd = self._command(action, params)
        env = _environment(params)
        if context.dispatch.idempotency_key is not None:  # side_effects: true
            env[IDEMPOTENCY_ENV] = context.dispatch.idempotency_key
        cwd = params.get("cwd") or default_cwd
        if cwd is not None and not os.path.isdir(cwd):
            raise ActionError("InvalidInput", f"cwd {cwd!r} is not a directory")
        limit = context.time_limit(seconds_parameter(params))
        stdin = json.dumps(params, default=str).encode()
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
                start_new_session=True,  # its own process group, killed as one on timeout
            )
        except OSError as exc:
            raise ActionError("CommandFailed", f"cannot start {argv[0]}: {exc}") from None
        try:
            out, err = process.communicate(stdin, timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            try:
                out, err = process.communicate(timeout=TIMEOUT_GRACE_SECONDS)
            except subprocess.TimeoutExpired:  # a child escaped the group and holds the pipes
                out, err = b"", b""
            _captured(out, err)
            raise ActionError(
                "CommandTimedOut",
                f"command did not finish within {limit:g} seconds and was killed",
                {
                    "timeout_seconds": limit,
                    "stdout": _tail(_text(out)),
                    "stderr": _tail(_text(err)),
                },
            ) from None
        finally:
            if process.poll() is None:  # interrupted: leave nothing behind
                _kill_group(process)
                process.wait()
        _captured(out, err)
        stdout, stderr = _text(out), _text(err)
        if process.returncode != 0:
            message = f"command exited with return code {process.returncode}"
            if stderr.strip():
                message += ": " + _tail(stderr)
            raise ActionError(
                "CommandFailed",
                message,
                {
                    "return_code": process.returncode,
                    "stdout": _tail(stdout),
                    "stderr": _tail(stderr),
                },
            )
        return {"stdout": stdout, "stderr": stderr, "return_code": process.returncode}

    def _command(self, action: ActionSpec, params: dict[str, Any]) -> tuple[list[str], str | None]:
        if action.entry_point:
            if action.base_dir is None and not os.path.isabs(action.entry_point):
                raise ActionError(
                    "InvalidAction",
                    f"action '{action.ref}' has a relative entry_point but no base folder",
                )
            script = os.path.join(action.base_dir or "", action.entry_point)
            if not os.path.isfile(script):
                raise ActionError(
                    "InvalidAction", f"action '{action.ref}': script {script} does not exist"
                )
            argv = [script] if os.access(script, os.X_OK) else [SHELL, script]
            return argv, os.path.dirname(os.path.abspath(script))
        cmd = params.get("cmd")
        if not isinstance(cmd, str) or not cmd.strip():
            raise ActionError(
                "InvalidAction",
                f"shell action '{action.ref}' has no entry_point and no 'cmd' parameter",
            )
        return [SHELL, "-c", cmd], None


def _environment(params: dict[str, Any]) -> dict[str, str]:
    """The worker's environment without its own ``TREADLE_*`` settings (they may hold
    database or broker credentials), plus ``env`` and one ``TREADLE_PARAM_<NAME>`` per
    parameter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
    for name, value in params.items():
        if value is None or name in CONTROL_PARAMETERS:
            continue
        env[PARAM_ENV_PREFIX + re.sub(r"\W", "_", name).upper()] = _env_value(value)
    extra = params.get("env") or {}
    if not isinstance(extra, dict):
        raise ActionError("InvalidInput", "parameter 'env' must be an object of names to values")
    for name, value in extra.items():
        env[str(name)] = _env_value(value)
    return env


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _captured(out: bytes | None, err: bytes | None) -> None:
    """The command's output is the attempt's captured output (when capture is on)."""
    capture = current_capture()
    if capture is not None:
        capture.add("stdout", (out or b"").decode("utf-8", errors="replace"))
        capture.add("stderr", (err or b"").decode("utf-8", errors="replace"))


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace").rstrip("\n")


def _tail(text: str) -> str:
    return text if len(text) <= STDERR_TAIL_CHARS else "..." + text[-STDERR_TAIL_CHARS:]
