"""Pack folders to a :class:`Catalog` of packs, actions and workflows.

A pack is a folder with ``pack.yaml``, ``actions/*.yaml``, workflows in ``workflows/`` or
``actions/workflows/``, and rules in ``rules/`` (``docs/rules.md``). Loading never raises
for definition problems: each goes to ``catalog.issues`` with its file and line, the
broken file (or rule document) is left out, and the rest loads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from treadle.common.catalog import Catalog
from treadle.common.errors import ParameterError
from treadle.common.loader.actions import read_action, read_linked_workflow
from treadle.common.loader.attune_workflow import read_workflow_document
from treadle.common.loader.pack_webhooks import read_webhooks
from treadle.common.loader.parameters import read_parameters
from treadle.common.loader.reader import Reader, sorted_issues
from treadle.common.loader.rules import read_rule_file
from treadle.common.loader.yaml_source import read_yaml_file
from treadle.common.params import resolve_parameters
from treadle.common.source import Issue, Loc, Severity
from treadle.common.spec import PackSpec, ParameterSpec, WebhookSpec, WorkflowSpec

PACK_FIELDS: Final = (
    "ref", "label", "version", "description", "config", "config_schema", "webhooks",
)  # fmt: skip
PACK_IGNORED: Final = (
    "name", "author", "email", "keywords", "dependencies", "python_versions", "tags",
    "contributors", "stackstorm_version", "system", "runtime_deps", "conf_schema",
)  # fmt: skip
_YAML: Final = (".yaml", ".yml")


def load_packs(paths: Sequence[str | os.PathLike[str]]) -> Catalog:
    """Load every pack under ``paths`` (pack folders or folders of packs)."""
    return PackLoader().load(paths).catalog


@dataclass
class PackLoader:
    """Loads packs into ``catalog``; ``drafts`` keeps every workflow that could be read,
    including those left out of the catalog because of errors, so the validator can still
    check them (each with the file it came from)."""

    catalog: Catalog = field(default_factory=Catalog)
    drafts: list[WorkflowSpec] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    webhook_owners: dict[str, str] = field(default_factory=dict)

    def load(self, paths: Sequence[str | os.PathLike[str]]) -> PackLoader:
        for given in paths:
            self._load_path(os.fspath(given))
        return self

    def _load_path(self, path: str) -> None:
        if not os.path.exists(path):
            self._issue(Loc(path), "no such pack folder")
            return
        if not os.path.isdir(path):
            self._issue(Loc(path), "a pack path must be a folder (a pack, or a folder of packs)")
            return
        if _is_pack(path):
            self._load_pack(path)
            return
        found = False
        for name in sorted(os.listdir(path)):
            child = os.path.join(path, name)
            if not name.startswith(".") and os.path.isdir(child) and _is_pack(child):
                found = True
                self._load_pack(child)
        if not found:
            self._issue(Loc(path), "no pack.yaml in this folder or in its subfolders")

    def _load_pack(self, folder: str) -> None:
        real = os.path.realpath(folder)
        if real in self.seen:
            return
        self.seen.add(real)
        pack = self._read_pack_file(folder)
        if pack is None:
            return
        if pack.ref in self.catalog.packs:
            self._issue(
                Loc(os.path.join(folder, "pack.yaml")),
                f"pack '{pack.ref}' is defined twice: "
                f"in {self.catalog.packs[pack.ref].path} and {folder}",
            )
            return
        self.catalog.packs[pack.ref] = pack
        linked: set[str] = set()
        for file in _yaml_files(os.path.join(folder, "actions")):
            self._load_action(file, pack.ref, linked)
        for sub in ("workflows", os.path.join("actions", "workflows")):
            for file in _yaml_files(os.path.join(folder, sub)):
                if os.path.realpath(file) not in linked:
                    self._load_standalone(file, pack.ref)
        for file in _yaml_files(os.path.join(folder, "rules")):
            self._load_rules(file, pack.ref)

    def _load_rules(self, file: str, pack: str) -> None:
        rules, issues = read_rule_file(file, pack)
        self._take(issues)
        for rule in rules:
            if self._claim(f"rule {rule.ref}", file, rule.source.loc(("ref",))):
                self.catalog.rules[rule.ref] = rule

    def _read_pack_file(self, folder: str) -> PackSpec | None:
        document = read_yaml_file(os.path.join(folder, "pack.yaml"))
        reader = Reader(document)
        data = document.data
        if not isinstance(data, dict):
            if data is not None:
                reader.error((), "pack.yaml must be a mapping with 'ref'")
            self._take(reader.issues)
            return None
        reader.check_fields(
            data, (), "pack.yaml", PACK_FIELDS, ignored=PACK_IGNORED, severity=Severity.WARNING
        )
        ref = reader.text(data.get("ref"), ("ref",), "'ref'")
        if not ref:
            reader.error((), "pack.yaml needs a 'ref' (the pack's name, e.g. 'examples')")
        schema_key = "config" if "config" in data else "config_schema"
        schema = read_parameters(reader, data.get(schema_key), (schema_key,))
        version = reader.text(data.get("version"), ("version",), "'version'", coerce=True)
        description = reader.text(data.get("description"), ("description",), "'description'")
        webhooks = read_webhooks(reader, data.get("webhooks"), ("webhooks",))
        self._take(reader.issues)
        if not ref or document.issues:
            return None
        config = self._config(folder, ref, schema, reader.loc((schema_key,)))
        return PackSpec(
            ref=ref,
            version=version,
            description=description,
            config_schema=schema,
            config=config,
            path=os.path.abspath(folder),
            webhooks=self._own_webhooks(webhooks, ref, reader),
        )

    def _own_webhooks(
        self, declared: tuple[WebhookSpec, ...], pack: str, reader: Reader
    ) -> tuple[WebhookSpec, ...]:
        """The webhooks of ``pack`` no pack loaded before declares (names are global)."""
        kept: list[WebhookSpec] = []
        for index, webhook in enumerate(declared):
            first = self.webhook_owners.setdefault(webhook.name, pack)
            if first != pack:
                self._issue(
                    reader.loc(("webhooks", index, "name")),
                    f"webhook '{webhook.name}' is declared by pack '{first}' and by pack "
                    f"'{pack}'; webhook names are unique across the installation",
                )
                continue
            kept.append(webhook)
        return tuple(kept)

    def _config(
        self, folder: str, ref: str, schema: tuple[ParameterSpec, ...], schema_loc: Loc
    ) -> dict[str, Any]:
        values: dict[Any, Any] = {}
        where = schema_loc
        for name in ("config.yaml", "config.yml"):
            file = os.path.join(folder, name)
            if os.path.isfile(file):
                document = read_yaml_file(file)
                self._take(document.issues)
                where = Loc(file, 1, 1)
                if isinstance(document.data, dict):
                    values = document.data
                elif document.data is not None:
                    self._issue(where, "config.yaml must be a mapping of configuration values")
                break
        if not schema:
            return {str(k): v for k, v in values.items()}
        try:
            return resolve_parameters(schema, values, subject=f"config of pack '{ref}'")
        except ParameterError as exc:
            for problem in exc.problems:
                self._issue(where, f"config of pack '{ref}': {problem}")
            defaults = {p.name: p.default for p in schema if p.has_default}
            return {**defaults, **{str(k): v for k, v in values.items()}}

    def _load_action(self, file: str, pack: str, linked: set[str]) -> None:
        read = read_action(read_yaml_file(file), pack)
        self._take(read.reader.issues)
        action = read.action
        if read.workflow_path is not None:
            linked.add(os.path.realpath(read.workflow_path))
            spec, issues = read_linked_workflow(read, read_yaml_file(read.workflow_path))
            self._take(issues)
            if spec is not None:
                self.drafts.append(spec)
            if spec is None or _has_errors(issues):
                return
            if action is not None and self._claim(action.ref, file, read.reader.loc(("ref",))):
                self.catalog.workflows[spec.ref] = spec
                self.catalog.actions[action.ref] = action
            return
        if action is not None and self._claim(action.ref, file, read.reader.loc(("ref",))):
            self.catalog.actions[action.ref] = action

    def _load_standalone(self, file: str, pack: str) -> None:
        stem = os.path.basename(file).rsplit(".", 1)[0]
        stem = stem.removesuffix(".workflow")
        spec, issues = read_workflow_document(read_yaml_file(file), default_ref=f"{pack}.{stem}")
        self._take(issues)
        if spec is None:
            return
        self.drafts.append(spec)
        if not _has_errors(issues) and self._claim(spec.ref, file, spec.source.loc(("ref",))):
            self.catalog.workflows[spec.ref] = spec

    def _claim(self, ref: str, file: str, loc: Loc) -> bool:
        """Record that ``file`` defines ``ref``; report a clash with an earlier file."""
        first = self.origins.get(ref)
        if first is not None:
            self._issue(loc, f"'{ref}' is defined twice: in {first} and in {file}")
            return False
        self.origins[ref] = file
        return True

    def _issue(self, loc: Loc, message: str) -> None:
        self.catalog.issues.append(Issue(loc, message))

    def _take(self, issues: Sequence[Issue]) -> None:
        self.catalog.issues.extend(sorted_issues(issues))


def _is_pack(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "pack.yaml"))


def _yaml_files(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return [
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if name.endswith(_YAML) and os.path.isfile(os.path.join(folder, name))
    ]


def _has_errors(issues: Sequence[Issue]) -> bool:
    return any(i.severity is Severity.ERROR for i in issues)
