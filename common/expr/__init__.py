"""Sandboxed Jinja2 templates with Attune's namespaces, filters and type-preserving rendering."""

from treadle.common.expr.text import expression_source, is_template

__all__ = ["expression_source", "is_template"]
