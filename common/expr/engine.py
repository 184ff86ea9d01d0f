"""Rendering workflow values, evaluating conditions and checking templates.

Everything that turns a template written by a workflow author into data goes through
:class:`TemplateEngine`: the scheduler renders task inputs, ``publish`` values and outputs,
evaluates ``when`` and ``with_items``, and the validator checks syntax and the names a
template reads. Compiled templates are cached by their text, and strings without template
syntax never reach Jinja, because the scheduler renders thousands of values per second.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Callable, Collection, ItemsView, Iterator, KeysView, Mapping, ValuesView
from difflib import get_close_matches
from functools import lru_cache
from typing import Any, Final

from jinja2 import Template, Undefined, nodes
from jinja2.exceptions import TemplateError, TemplateSyntaxError
from jinja2.parser import Parser
from jinja2.runtime import Context

from treadle.common.errors import ExpressionError, TreadleError
from treadle.common.expr.guards import TemplateLimitError, check_text_size
from treadle.common.expr.names import read_paths
from treadle.common.expr.problems import TemplateProblem
from treadle.common.expr.sandbox import (
    LOOP_GUARD_FILTER,
    LoopBudgetContext,
    SandboxEnvironment,
    guard_loops,
    reject_unsupported_tags,
)
from treadle.common.expr.tera import TernaryError, rewrite_expression, rewrite_template
from treadle.common.expr.text import expression_source, is_template

DEFAULT_MAX_OUTPUT_BYTES: Final = 10 * 1024 * 1024
DEFAULT_CACHE_SIZE: Final = 4096

_RESULT: Final = "treadle_result"
_QUOTE_LIMIT: Final = 200
_UNKNOWN_FILTER: Final = re.compile(r"No filter named '([^']*)'\.?")
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
_SEQUENCES: Final = (list, tuple, range, Iterator, KeysView, ValuesView, ItemsView)


class _Program:
    """A compiled template: either native (one expression, any value) or text."""

    __slots__ = ("blocks", "native", "root", "source")

    def __init__(self, source: str, compiled: Template, *, native: bool) -> None:
        self.source = source
        self.root: Callable[[Context], Iterator[str]] = compiled.root_render_func
        self.blocks: dict[str, Callable[[Context], Iterator[str]]] = compiled.blocks
        self.native = native


def plain_value(value: Any) -> Any:
    """A template result as plain data: undefined -> None, markup -> str, iterators -> lists.

    Containers are always copied, so the caller never shares a list or dict with the context.
    """
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Undefined):
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {
            (str(key) if isinstance(key, str) else key): plain_value(item)
            for key, item in value.items()
        }
    if isinstance(value, _SEQUENCES):
        return [plain_value(item) for item in value]
    if isinstance(value, (set, frozenset)):
        try:
            ordered = sorted(value)
        except TypeError:
            ordered = list(value)
        return [plain_value(item) for item in ordered]
    return value


def _quote(source: str) -> str:
    text = source if len(source) <= _QUOTE_LIMIT else source[: _QUOTE_LIMIT - 3] + "..."
    return f'"{text}"'


def _reason(exc: BaseException) -> str:
    text = (exc.message or "") if isinstance(exc, TemplateError) else str(exc)
    text = text.replace("not supported between instances of", "not supported between")
    if isinstance(exc, (TemplateError, TypeError, ValueError, ArithmeticError)):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _problem_from_ternary(exc: TernaryError, text: str) -> TemplateProblem:
    line = text.count("\n", 0, exc.offset) + 1
    col = exc.offset - (text.rfind("\n", 0, exc.offset) + 1) + 1
    return TemplateProblem(str(exc), line, col)


def _problem_from_syntax(exc: TemplateSyntaxError, filters: Collection[str]) -> TemplateProblem:
    message = exc.message or "invalid syntax"
    unknown = _UNKNOWN_FILTER.fullmatch(message)
    if unknown is not None:
        message = f"unknown filter {unknown.group(1)!r}"
        close = get_close_matches(unknown.group(1), filters, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return TemplateProblem(message, exc.lineno or 1)


class TemplateEngine:
    """Sandboxed Jinja2 with Tera conveniences, type-preserving rendering and caching.

    One engine is shared by everything in a process; it is safe to use from several threads.
    """

    def __init__(
        self,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.max_output_bytes = max_output_bytes
        self._env = SandboxEnvironment(max_output_bytes)
        self._globals: dict[str, Any] = dict(self._env.globals)
        self._template = lru_cache(maxsize=cache_size)(self._compile_template)
        self._condition = lru_cache(maxsize=cache_size)(self._compile_condition)
        self._paths = lru_cache(maxsize=cache_size)(self._read_paths)

    @property
    def global_names(self) -> frozenset[str]:
        """Names every template can use without the context providing them (``length`` ...)."""
        return frozenset(self._globals)

    @property
    def filter_names(self) -> frozenset[str]:
        """Filters templates can use."""
        return frozenset(self._env.filters) - {LOOP_GUARD_FILTER}

    # -- public API ----------------------------------------------------------------------

    def render(self, value: Any, context: Mapping[str, Any]) -> Any:
        """Render every template inside ``value`` (dict values, list items, strings).

        A string that is exactly one ``{{ expression }}`` keeps the expression's type; other
        templates render to text; strings without template syntax are returned unchanged.
        Dict keys are not rendered. The result is built fresh; ``value`` is not modified.
        """
        if isinstance(value, str) and not is_template(value):
            return value
        return self._render(value, self._scope(context))

    def evaluate(self, source: str, context: Mapping[str, Any]) -> Any:
        """The value of one expression: ``"{{ a > 1 }}"`` or the bare ``"a > 1"``."""
        program = self._condition(source)
        if isinstance(program, TemplateProblem):
            raise self._invalid(source, program)
        return self._run(program, self._scope(context), "evaluate")

    def truthy(self, source: str | None, context: Mapping[str, Any]) -> bool:
        """Whether a condition holds; no condition (``None``) always holds."""
        if source is None:
            return True
        return bool(self.evaluate(source, context))

    def check(self, source: str, *, as_expression: bool = False) -> list[TemplateProblem]:
        """Syntax problems in ``source`` (empty when it compiles), without rendering it.

        With ``as_expression=True`` the source is checked the way :meth:`evaluate` reads
        it (a bare expression is allowed; mixed text is a problem).
        """
        if as_expression:
            program = self._condition(source)
        elif not is_template(source):
            return []
        else:
            program = self._template(source)
        return [program] if isinstance(program, TemplateProblem) else []

    def names(self, source: str, *, as_expression: bool = False) -> set[tuple[str, ...]]:
        """Attribute paths ``source`` reads from the context (globals and local names left out).

        ``"{{ task.x.result.y | length }}"`` gives ``{("task", "x", "result", "y")}``.
        Raises :class:`ExpressionError` when the source does not parse; see :meth:`check`.
        """
        if not as_expression and not is_template(source):
            return set()
        paths = self._paths(source, as_expression)
        if isinstance(paths, TemplateProblem):
            raise self._invalid(source, paths)
        return set(paths)

    # -- rendering -----------------------------------------------------------------------

    def _scope(self, context: Mapping[str, Any]) -> Mapping[str, Any]:
        if type(context) is dict:
            scope = self._globals.copy()
            scope.update(context)
            return scope
        return ChainMap(context, self._globals)  # type: ignore[arg-type]

    def _render(self, value: Any, scope: Mapping[str, Any]) -> Any:
        if isinstance(value, str):
            if not is_template(value):
                return value
            program = self._template(value)
            if isinstance(program, TemplateProblem):
                raise self._invalid(value, program)
            return self._run(program, scope, "render")
        if isinstance(value, Mapping):
            return {key: self._render(item, scope) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._render(item, scope) for item in value]
        return value

    def _run(self, program: _Program, scope: Mapping[str, Any], verb: str) -> Any:
        env = self._env
        context = LoopBudgetContext(env, scope, None, program.blocks)  # type: ignore[arg-type]
        try:
            if program.native:
                for _ in program.root(context):
                    pass
                value = plain_value(context.vars[_RESULT])
                if type(value) is str:
                    self._check_size(value)
                return value
            return self._text(program.root(context))
        except TreadleError:
            raise
        except Exception as exc:
            message = f"cannot {verb} {_quote(program.source)}: {_reason(exc)}"
            raise ExpressionError(message, template=program.source) from exc

    def _text(self, chunks: Iterator[str]) -> str:
        limit = self.max_output_bytes
        parts: list[str] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise TemplateLimitError(
                    f"the rendered text is longer than the limit of {limit:,} bytes"
                )
            parts.append(chunk)
        text = "".join(parts)
        self._check_size(text)
        return text

    def _check_size(self, text: str) -> None:
        limit = self.max_output_bytes
        if len(text) * 4 > limit:
            check_text_size(len(text.encode()), limit, "the rendered text (in bytes)")

    # -- compiling -----------------------------------------------------------------------

    def _invalid(self, source: str, problem: TemplateProblem) -> ExpressionError:
        kind = "template" if is_template(source) else "expression"
        return ExpressionError(f"invalid {kind} {_quote(source)}: {problem}", template=source)

    def _compile_template(self, source: str) -> _Program | TemplateProblem:
        """Compile a template; one ``{{ expression }}`` compiles to a native program."""
        try:
            tree = self._env.parse(rewrite_template(source))
            reject_unsupported_tags(tree)
            expression = self._single_expression(source, tree)
            if expression is not None:
                tree = self._assignment(expression)
            return self._program(source, tree, native=expression is not None)
        except TernaryError as exc:
            return _problem_from_ternary(exc, source)
        except TemplateSyntaxError as exc:
            return _problem_from_syntax(exc, self._env.filters)

    def _compile_condition(self, source: str) -> _Program | TemplateProblem:
        """Compile what :meth:`evaluate` accepts: one ``{{ expression }}`` or a bare one."""
        if is_template(source):
            if expression_source(source) is None:
                return TemplateProblem(
                    "a condition or item list must be one {{ expression }} or a bare "
                    "expression, not text with templates in it",
                    1,
                )
            return self._template(source)
        try:
            return self._program(source, self._assignment(self._parse_bare(source)), native=True)
        except TernaryError as exc:
            return _problem_from_ternary(exc, source)
        except TemplateSyntaxError as exc:
            return _problem_from_syntax(exc, self._env.filters)

    def _parse_bare(self, source: str) -> nodes.Expr:
        if not source.strip():
            raise TemplateSyntaxError("the expression is empty", 1)
        parser = Parser(self._env, rewrite_expression(source), state="variable")
        expression = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise TemplateSyntaxError(
                f"unexpected {token.value!r} after the expression", token.lineno
            )
        return expression

    @staticmethod
    def _single_expression(source: str, tree: nodes.Template) -> nodes.Expr | None:
        if expression_source(source) is None or len(tree.body) != 1:
            return None
        output = tree.body[0]
        if not isinstance(output, nodes.Output):
            return None
        found = [node for node in output.nodes if not isinstance(node, nodes.TemplateData)]
        return found[0] if len(found) == 1 else None

    def _assignment(self, expression: nodes.Expr) -> nodes.Template:
        target = nodes.Name(_RESULT, "store", lineno=expression.lineno)
        tree = nodes.Template([nodes.Assign(target, expression, lineno=expression.lineno)])
        tree.set_environment(self._env)
        return tree

    def _program(self, source: str, tree: nodes.Template, *, native: bool) -> _Program:
        guard_loops(tree)
        tree.set_environment(self._env)
        return _Program(source, self._env.from_string(tree), native=native)

    def _read_paths(
        self, source: str, as_expression: bool
    ) -> frozenset[tuple[str, ...]] | TemplateProblem:
        try:
            if as_expression and not is_template(source):
                tree = nodes.Template([nodes.Output([self._parse_bare(source)])])
            else:
                tree = self._env.parse(rewrite_template(source))
        except TernaryError as exc:
            return _problem_from_ternary(exc, source)
        except TemplateSyntaxError as exc:
            return _problem_from_syntax(exc, self._env.filters)
        return frozenset(read_paths(tree, self._globals))
