"""Sandboxed Jinja2 templates with Attune's namespaces, filters and type-preserving rendering."""

from treadle.common.expr.engine import TemplateEngine
from treadle.common.expr.problems import TemplateProblem
from treadle.common.expr.text import expression_source, is_template

__all__ = ["TemplateEngine", "TemplateProblem", "expression_source", "is_template"]
