"""The Jinja environment workflow templates run in: sandboxed, data-first and bounded.

Templates come from workflow authors and run inside the scheduler, so they must not reach
Python internals, change the data they read, or exhaust memory or CPU. On top of Jinja's
``ImmutableSandboxedEnvironment`` this environment

* refuses every attribute or key starting with ``_`` with a clear error (Jinja would quietly
  give an undefined value);
* looks keys up before attributes on mappings, so a result key called ``items`` or ``count``
  is the data, not the dict method, and lazy ``Mapping`` namespaces work like dicts;
* chains undefined values (``a.b.c`` is undefined when ``a`` has no ``b``) but fails on
  calling them, ordering comparisons and arithmetic;
* checks ``*``, ``**``, ``+``, ``%``, ``~``, padding string methods, ``str.format`` and
  loops (see :mod:`treadle.common.expr.guards`) before they allocate;
* prints data the JSON way in mixed text (``true``, ``[1,2]``, ``{"a":1}``, ``None`` as "").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import BuiltinMethodType
from typing import Any, Final

from jinja2 import ChainableUndefined, Undefined, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from treadle.common.expr import guards
from treadle.common.expr.filters import (
    FILTERS,
    GLOBALS,
    REMOVED_FILTERS,
    REMOVED_GLOBALS,
    dump_json,
    json_default,
)

#: Mapping methods still reachable as attributes when the mapping has no such key.
MAPPING_METHODS: Final = frozenset({"get", "items", "keys", "values"})
#: A mapping class may list more methods templates may call in this class attribute (the
#: keystore's ``get_secret``).
TEMPLATE_METHODS: Final = "TEMPLATE_METHODS"
#: Name of the internal filter that counts loop iterations.
LOOP_GUARD_FILTER: Final = "treadle_loop_guard"

_UNSUPPORTED_TAGS: Final[dict[type[nodes.Node], str]] = {
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
}


def forbidden_access(name: str) -> SecurityError:
    """The error for reaching a private or unsafe attribute or key."""
    return SecurityError(f"access to {name!r} is not allowed")


class ChainedUndefined(ChainableUndefined):
    """A missing value: ``a.b.c`` stays undefined, but using it in arithmetic fails.

    Messages name the first missing piece (``'x' is undefined``) without Python type names.
    """

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        if isinstance(name, str):
            return f"{name!r} is undefined"
        return f"there is no item {name!r}"


def finalize_output(value: Any) -> Any:
    """How a ``{{ value }}`` prints inside mixed text: JSON spelling, nothing for null."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if isinstance(value, (Mapping, list, tuple, range, Iterator)):
        return dump_json(value)
    return value


class LoopBudgetContext(Context):
    """The render context, carrying how many loop iterations this rendering has run."""

    loop_steps: int = 0


@pass_context
def loop_guard(context: Context, iterable: Any) -> Any:
    """Count the iterations of a ``{% for %}`` loop against :data:`guards.MAX_LOOP_STEPS`."""
    if isinstance(iterable, Undefined) or not isinstance(context, LoopBudgetContext):
        return iterable
    return _counted(context, iterable)


def _counted(context: LoopBudgetContext, iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        context.loop_steps += 1
        if context.loop_steps > guards.MAX_LOOP_STEPS:
            raise guards.TemplateLimitError(
                f"loops ran more than {guards.MAX_LOOP_STEPS:,} iterations in one template"
            )
        yield item


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with ``~`` routed through a size check."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802
        self.write("environment.concat_text((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The one Jinja environment a :class:`TemplateEngine` compiles and renders with."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CodeGenerator
    context_class = LoopBudgetContext

    def __init__(self, max_output_bytes: int) -> None:
        super().__init__(
            autoescape=False,
            keep_trailing_newline=True,
            undefined=ChainedUndefined,
            finalize=finalize_output,
            cache_size=0,
        )
        self.max_output_bytes = max_output_bytes
        for name in REMOVED_FILTERS:
            self.filters.pop(name, None)
        for name in REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.filters.update(FILTERS)
        self.filters[LOOP_GUARD_FILTER] = loop_guard
        self.globals.update(GLOBALS)
        self.policies["json.dumps_kwargs"] = {
            "sort_keys": False,
            "ensure_ascii": False,
            "default": json_default,
        }

    # -- lookups ------------------------------------------------------------------------

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute``: the mapping's key first, then safe attributes."""
        if attribute[:1] == "_":
            raise forbidden_access(attribute)
        if type(obj) is dict or isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except LookupError:
                pass
            if attribute in MAPPING_METHODS or attribute in getattr(
                type(obj), TEMPLATE_METHODS, ()
            ):
                return getattr(obj, attribute)
            return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, Undefined):
            return obj
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``obj[argument]``: the key or index, never a private name."""
        if isinstance(argument, str) and argument[:1] == "_":
            raise forbidden_access(argument)
        if type(obj) is dict or isinstance(obj, Mapping):
            try:
                return obj[argument]
            except (LookupError, TypeError):
                return self.undefined(obj=obj, name=argument)
        if isinstance(obj, Undefined):
            return obj
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        """Jinja would hand back a silent undefined; a workflow author gets an error instead."""
        raise forbidden_access(attribute)

    # -- bounded operations -------------------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Check ``*``, ``**``, ``+`` and ``%`` operands before computing the result."""
        limit = self.max_output_bytes
        if operator == "*":
            guards.check_multiply(left, right, limit)
        elif operator == "**":
            guards.check_power(left, right)
        elif operator == "+":
            guards.check_add(left, right, limit)
        elif operator == "%" and isinstance(left, str):
            guards.check_printf(left, limit)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``obj`` from a template, checking string methods that can grow text."""
        if isinstance(obj, BuiltinMethodType):
            owner = getattr(obj, "__self__", None)
            if isinstance(owner, str):
                guards.check_str_method(owner, obj.__name__, args, self.max_output_bytes)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``'{:>10}'.format(x)``: check field widths, then let Jinja sandbox the call."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            guards.check_format_string(value.__self__, self.max_output_bytes)
        return wrapped

    def concat_text(self, parts: tuple[Any, ...]) -> str:
        """The ``~`` operator: join the parts as text, refusing a result over the limit."""
        texts = [part if type(part) is str else str(part) for part in parts]
        guards.check_text_size(
            sum(len(text) for text in texts), self.max_output_bytes, "the result of '~'"
        )
        return "".join(texts)


def reject_unsupported_tags(template: nodes.Template) -> None:
    """Refuse tags that need a loader or define code (``include``, ``macro`` ...)."""
    for node_type, tag in _UNSUPPORTED_TAGS.items():
        for node in template.find_all(node_type):
            raise TemplateSyntaxError(
                f"'{{% {tag} %}}' is not supported in workflow templates", node.lineno
            )


def guard_loops(template: nodes.Template) -> None:
    """Make every ``{% for %}`` loop count its iterations (see :func:`loop_guard`)."""
    for loop in list(template.find_all(nodes.For)):
        loop.iter = nodes.Filter(
            loop.iter, LOOP_GUARD_FILTER, [], [], None, None, lineno=loop.iter.lineno
        )
