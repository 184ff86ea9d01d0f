"""``treadle import FILE``: a workflows/v1 version or an AOS plan (JSON) as pack YAML.

The dialect is recognised from the document (or given with ``--dialect``). The imported
workflow is validated against the packs (shipped, ``TREADLE_PACK_PATHS``, ``--pack-path``)
the way ``treadle validate`` does, then written as a standalone workflow file: to ``-o``,
or stdout. Problems go to stderr as ``path:line:col: <json path>: message``; exit 2 when
there is an error (nothing is written), 0 otherwise. See ``docs/dialects.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from treadle.cli.support import ExitCode, fail, load_catalog, load_settings, print_issues


def register(app: typer.Typer) -> None:
    app.command("import")(import_file)


def import_file(
    file: Annotated[Path, typer.Argument(help="The JSON file to import.", show_default=False)],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the YAML here instead of stdout."),
    ] = None,
    dialect: Annotated[
        str | None,
        typer.Option(help="workflows-v1 or aos (recognised from the file when not given)."),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option(help="The workflow's ref (default: from the definition or plan id)."),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="NAME=ACTION_REF: call ACTION_REF for a v1 action_type or skill_id, or an "
            "AOS skill. Repeatable.",
            show_default=False,
        ),
    ] = None,
    parameter: Annotated[
        list[str] | None,
        typer.Option(
            "--parameter",
            help="Declare a run input (workflows/v1). Repeatable.",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        str, typer.Option(help="The policy action of GOVERNANCE_CHECK steps (workflows/v1).")
    ] = "core.risk_policy",
    webhook: Annotated[
        list[str] | None,
        typer.Option(
            "--webhook",
            help="CHANNEL=URL: send notifications of a v1 notification_channel "
            "(DELIVERY_CHANNEL_SLACK ...) to a webhook instead of the log. Repeatable.",
            show_default=False,
        ),
    ] = None,
    no_seed: Annotated[
        bool, typer.Option("--no-seed", help="Do not add the per-step 'seed' input (AOS).")
    ] = False,
    pack_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--pack-path",
            help="A pack (or folder of packs) the imported workflow's actions come from. "
            "Repeatable.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Convert a workflows/v1 version or an AOS plan to a workflow file in pack YAML."""
    from treadle.common.dialects import (
        AOS,
        WORKFLOWS_V1,
        AosOptions,
        V1Options,
        read_text,
        spec_to_yaml,
    )
    from treadle.common.source import Severity
    from treadle.common.validate import validate_workflow

    if dialect not in (None, WORKFLOWS_V1, AOS):
        fail(f"unknown dialect {dialect!r}: use {WORKFLOWS_V1} or {AOS}")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}")
    mapped = _pairs(mapping or [], "--map")
    channels = {
        name: {"channel": "webhook", "url": url}
        for name, url in _pairs(webhook or [], "--webhook").items()
    }
    v1 = V1Options(
        ref=ref, actions=mapped, policy=policy, channels=channels, parameters=tuple(parameter or ())
    )
    aos = AosOptions(ref=ref, skills=mapped, seed=not no_seed)
    spec, issues = read_text(text, str(file), dialect=dialect, v1=v1, aos=aos)
    if spec is not None and ref is None and spec.dialect == AOS and spec.ref == "aos.plan":
        from treadle.common.dialects.shared import ref_part

        spec = spec.model_copy(update={"ref": "aos." + ref_part(file.stem, "plan")})
    if spec is not None and not any(i.severity is Severity.ERROR for i in issues):
        catalog = load_catalog(load_settings(), pack_path or [])
        issues = [*issues, *validate_workflow(spec, catalog)]
    print_issues(issues)
    if spec is None or any(i.severity is Severity.ERROR for i in issues):
        raise typer.Exit(int(ExitCode.INVALID))
    header = (
        f"Imported from {file.name} ({spec.dialect}) by `treadle import`.\n"
        "The original document is kept under `metadata`; see docs/dialects.md."
    )
    written = spec_to_yaml(spec, header=header)
    if output is None:
        typer.echo(written, nl=False)
        return
    try:
        output.write_text(written, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
    typer.echo(f"wrote {spec.ref} ({len(spec.tasks)} tasks) to {output}", err=True)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            fail(f"{option} expects NAME=VALUE, got {value!r}")
        pairs[name] = target
    return pairs
