"""Definitions on disk to the models in :mod:`treadle.common.spec`, with every problem located.

* :func:`load_workflow_file` / :func:`load_workflow_text`: one Attune workflow; raise
  :class:`~treadle.common.errors.DefinitionError` carrying every error in the file.
* :func:`read_workflow_file` / :func:`read_workflow_text`: the same without raising,
  returning ``(spec or None, issues)`` for the validator.
* :func:`load_packs`: pack folders to a :class:`~treadle.common.catalog.Catalog`; problems
  are collected in ``catalog.issues`` and never raised.
"""

from treadle.common.loader.attune_workflow import (
    load_workflow_file,
    load_workflow_text,
    read_workflow_file,
    read_workflow_text,
)
from treadle.common.loader.durations import DurationError, parse_duration
from treadle.common.loader.packs import PackLoader, load_packs
from treadle.common.loader.yaml_source import VALUE, Document, parse_yaml, read_yaml_file

__all__ = [
    "VALUE",
    "Document",
    "DurationError",
    "PackLoader",
    "load_packs",
    "load_workflow_file",
    "load_workflow_text",
    "parse_duration",
    "parse_yaml",
    "read_workflow_file",
    "read_workflow_text",
    "read_yaml_file",
]
