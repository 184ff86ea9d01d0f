"""Attune task entries to :class:`TaskSpec`, one field at a time, every problem collected.

Each task records its ``path`` in the document (``("tasks", 3)``, or
``("tasks", 3, "tasks", 1)`` for a task nested in a parallel block) so later checks and
run-time errors can name the line it came from.
"""

from __future__ import annotations

from typing import Any, Final

import pydantic

from treadle.common.expr import expression_source
from treadle.common.loader.flow_fields import (
    read_concurrency_key,
    read_priority,
    read_rate_limit,
)
from treadle.common.loader.guard_fields import read_escalate, read_usd
from treadle.common.loader.legacy import LEGACY_FIELDS, task_transitions
from treadle.common.loader.reader import Reader
from treadle.common.loader.transitions import condition_expression
from treadle.common.source import Path
from treadle.common.spec import (
    Backoff,
    CompensationSpec,
    EventWaitSpec,
    InquirySpec,
    RetrySpec,
    TaskSpec,
    TaskType,
    WaitForSpec,
)

TASK_FIELDS: Final = (
    "name", "action", "input", "next", "type", "tasks", "with_items", "batch_size",
    "concurrency", "retry", "timeout", "delay", "join", "when", "wait_for", "compensate", "queue",
    "priority", "concurrency_key", "rate_limit", "cost_estimate_usd", "cost_ceiling_usd",
    "escalate", *LEGACY_FIELDS,
)  # fmt: skip
#: Attune metadata that does not change how a task runs.
TASK_IGNORED: Final = ("description", "label", "permission_set_refs", "tags")
#: Attune features Treadle does not have, each with its own explanation.
TASK_UNSUPPORTED: Final = {
    "iterate_cache": (
        "`iterate_cache` (Attune's data-cache iterator) is not supported by Treadle; "
        "iterate a list with `with_items` instead"
    ),
}


def read_tasks(reader: Reader, value: Any, path: Path) -> tuple[TaskSpec, ...]:
    """The task list at ``path`` (the workflow's, or a parallel task's nested one)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        reader.error(path, "'tasks' must be a list of tasks, each with a 'name'", fatal=True)
        return ()
    tasks: list[TaskSpec] = []
    for index, entry in enumerate(value):
        task = _read_task(reader, entry, (*path, index))
        if task is not None:
            tasks.append(task)
    return tuple(tasks)


def _read_task(reader: Reader, entry: Any, path: Path) -> TaskSpec | None:
    if not isinstance(entry, dict):
        reader.error(path, f"a task must be a mapping with a 'name', not {entry!r}", fatal=True)
        return None
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        where = (*path, "name") if "name" in entry else path
        reader.error(where, "every task needs a 'name' (text)", fatal=True)
        name = f"#{path[-1]}"
    what = f"task '{name}'"
    reader.check_fields(
        entry, path, what, TASK_FIELDS, ignored=TASK_IGNORED, special=TASK_UNSUPPORTED
    )

    fields: dict[str, Any] = {"name": name, "path": path}
    task_type = reader.choice(entry.get("type"), (*path, "type"), f"'type' of {what}", TaskType)
    parallel = task_type == TaskType.PARALLEL
    if task_type is not None:
        fields["type"] = TaskType(task_type)
    action = reader.text(entry.get("action"), (*path, "action"), f"'action' of {what}")
    if action is not None:
        if parallel:
            reader.error(
                (*path, "action"), f"parallel {what} runs its nested 'tasks'; it takes no 'action'"
            )
        fields["action"] = action
    if "tasks" in entry:
        if parallel:
            fields["tasks"] = read_tasks(reader, entry["tasks"], (*path, "tasks"))
        else:
            reader.error((*path, "tasks"), f"nested 'tasks' need 'type: parallel' on {what}")
    input_value = reader.mapping(entry.get("input"), (*path, "input"), f"'input' of {what}")
    if input_value:
        for key in input_value:
            if not isinstance(key, str):
                reader.error(
                    (*path, "input", key), f"input name {key!r} of {what} must be text; quote it"
                )
        fields["input"] = {k: v for k, v in input_value.items() if isinstance(k, str)}
    if "with_items" in entry:
        items = _with_items(reader, entry["with_items"], (*path, "with_items"), what)
        if parallel:
            reader.error((*path, "with_items"), f"'with_items' does not apply to parallel {what}")
        elif items is not None:
            fields["with_items"] = items
    for key in ("batch_size", "concurrency"):
        count = reader.count(entry.get(key), (*path, key), f"'{key}' of {what}", minimum=1)
        if count is not None:
            fields[key] = count
    for key in ("timeout", "delay"):
        duration = reader.duration(entry.get(key), (*path, key), f"'{key}' of {what}")
        if duration is not None:
            fields[key] = duration
    if "retry" in entry:
        fields["retry"] = _retry(reader, entry["retry"], (*path, "retry"), what)
    if "join" in entry:
        fields["join"] = _join(reader, entry["join"], (*path, "join"), what)
    if "when" in entry:
        guard = condition_expression(reader, entry["when"], (*path, "when"))
        if guard is not None:
            fields["when"] = "{{ " + guard + " }}"
    if "wait_for" in entry:
        fields["wait_for"] = _wait_for(reader, entry["wait_for"], (*path, "wait_for"), what)
    if "compensate" in entry:
        fields["compensate"] = _compensate(reader, entry["compensate"], (*path, "compensate"), what)
    queue = reader.text(entry.get("queue"), (*path, "queue"), f"'queue' of {what}")
    if queue is not None:
        fields["queue"] = queue
    fields["priority"] = read_priority(reader, entry.get("priority"), (*path, "priority"), what)
    if "concurrency_key" in entry:
        fields["concurrency_key"] = read_concurrency_key(
            reader, entry["concurrency_key"], (*path, "concurrency_key"), what
        )
    if "rate_limit" in entry:
        fields["rate_limit"] = read_rate_limit(
            reader, entry["rate_limit"], (*path, "rate_limit"), what
        )
    for key in ("cost_estimate_usd", "cost_ceiling_usd"):
        fields[key] = read_usd(reader, entry.get(key), (*path, key), f"'{key}' of {what}")
    if "escalate" in entry:
        fields["escalate"] = read_escalate(reader, entry["escalate"], (*path, "escalate"), what)
    fields["next"] = task_transitions(reader, entry, path, name)
    try:
        return TaskSpec(**{k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:  # pragma: no cover - the checks above come first
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            reader.error(path, f"{what}: '{field}': {error['msg']}", fatal=True)
        return None


def _with_items(reader: Reader, value: Any, path: Path, what: str) -> str | list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        if expression_source(value) is not None:
            return value
        if "{{" not in value and "{%" not in value and value.strip():
            return "{{ " + value.strip() + " }}"
    reader.error(
        path,
        f"'with_items' of {what} must be one {{{{ expression }}}} giving a list, or a list, "
        f"not {value!r}",
        at_value=True,
    )
    return None


def _retry(reader: Reader, value: Any, path: Path, what: str) -> RetrySpec | None:
    retry = reader.mapping(value, path, f"'retry' of {what}")
    if retry is None:
        return None
    reader.check_fields(
        retry, path, f"the retry of {what}", ("count", "delay", "backoff", "max_delay")
    )
    fields: dict[str, Any] = {
        "count": reader.count(
            retry.get("count"), (*path, "count"), f"'retry.count' of {what}", minimum=0
        ),
        "delay": reader.duration(retry.get("delay"), (*path, "delay"), f"'retry.delay' of {what}"),
        "max_delay": reader.duration(
            retry.get("max_delay"), (*path, "max_delay"), f"'retry.max_delay' of {what}"
        ),
    }
    backoff = reader.choice(
        retry.get("backoff"), (*path, "backoff"), f"'retry.backoff' of {what}", Backoff
    )
    if backoff is not None:
        fields["backoff"] = Backoff(backoff)
    return RetrySpec(**{k: v for k, v in fields.items() if v is not None})


def _join(reader: Reader, value: Any, path: Path, what: str) -> str | int | None:
    if value == "all":
        return "all"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    reader.error(
        path, f"'join' of {what} must be 'all' or a positive number, not {value!r}", at_value=True
    )
    return None


def _wait_for(reader: Reader, value: Any, path: Path, what: str) -> WaitForSpec | None:
    wait = reader.mapping(value, path, f"'wait_for' of {what}")
    if wait is None:
        return None
    reader.check_fields(wait, path, f"the wait_for of {what}", ("inquiry", "event", "timeout"))
    if "inquiry" not in wait and "event" not in wait:
        reader.error(path, f"'wait_for' of {what} needs an 'inquiry' or an 'event'")
        return None
    inquiry: InquirySpec | str | None = None
    if isinstance(wait.get("inquiry"), str):
        inquiry = wait["inquiry"]
    elif "inquiry" in wait:
        inquiry = _inquiry(reader, wait["inquiry"], (*path, "inquiry"), what)
    event = _event(reader, wait["event"], (*path, "event"), what) if "event" in wait else None
    timeout = reader.duration(
        wait.get("timeout"), (*path, "timeout"), f"'wait_for.timeout' of {what}"
    )
    return WaitForSpec(inquiry=inquiry, event=event, timeout=timeout)


def _inquiry(reader: Reader, value: Any, path: Path, what: str) -> InquirySpec | None:
    inquiry = reader.mapping(value, path, f"'wait_for.inquiry' of {what}")
    if inquiry is None:
        return None
    allowed = ("prompt", "schema", "response_schema", "assigned_to", "timeout")
    reader.check_fields(inquiry, path, f"the inquiry of {what}", allowed)
    if "schema" in inquiry and "response_schema" in inquiry:
        reader.error((*path, "response_schema"), "give 'schema' or 'response_schema', not both")
    key = "schema" if "schema" in inquiry else "response_schema"
    schema = reader.mapping(inquiry.get(key), (*path, key), f"the inquiry '{key}' of {what}")
    timeout = reader.duration(
        inquiry.get("timeout"), (*path, "timeout"), f"the inquiry timeout of {what}"
    )
    return InquirySpec(
        prompt=inquiry.get("prompt"),
        schema_=schema,
        assigned_to=inquiry.get("assigned_to"),
        timeout=timeout,
    )


def _event(reader: Reader, value: Any, path: Path, what: str) -> EventWaitSpec | None:
    event = reader.mapping(value, path, f"'wait_for.event' of {what}")
    if event is None:
        return None
    reader.check_fields(event, path, f"the event wait of {what}", ("type", "subject", "filter"))
    event_type = reader.text(event.get("type"), (*path, "type"), "the event 'type'")
    if not event_type:
        reader.error(path, f"the event wait of {what} needs a 'type'")
        return None
    return EventWaitSpec(
        type=event_type,
        subject=reader.text(event.get("subject"), (*path, "subject"), "the event 'subject'"),
        filter=reader.text(event.get("filter"), (*path, "filter"), "the event 'filter'"),
    )


def _compensate(reader: Reader, value: Any, path: Path, what: str) -> CompensationSpec | None:
    compensate = reader.mapping(value, path, f"'compensate' of {what}")
    if compensate is None:
        return None
    reader.check_fields(compensate, path, f"the compensation of {what}", ("action", "input"))
    action = reader.text(compensate.get("action"), (*path, "action"), "the compensation 'action'")
    if not action:
        reader.error(path, f"the compensation of {what} needs an 'action'")
        return None
    given = reader.mapping(compensate.get("input"), (*path, "input"), "the compensation 'input'")
    return CompensationSpec(action=action, input=dict(given or {}))
