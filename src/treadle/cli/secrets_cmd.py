"""``treadle secrets rotate-key|generate-key``: the key secrets are encrypted with.

``generate-key`` prints a new key for ``TREADLE_SECRET_KEY``. ``rotate-key`` re-encrypts
every stored secret with the first key of ``TREADLE_SECRET_KEY`` (older keys listed after
it), and encrypts secret keystore entries stored in plain text before encryption existed.
A rotation is recorded in the audit log as ``secrets.rotate-key`` by ``cli:<login>``, with
its counts (or, when a secret does not decrypt, as ``failed`` naming it), in a transaction
of its own once it ends: it re-encrypts in several transactions. See docs/security.md.
"""

from __future__ import annotations

from typing import Annotated

import typer

from treadle.cli.support import ExitCode, fail, identity, load_settings, print_json

secrets_app = typer.Typer(help="The key secrets are encrypted with.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")


@secrets_app.command("generate-key")
def generate_key() -> None:
    """Print a new random key for TREADLE_SECRET_KEY."""
    from treadle.common.secret_box import generate_key as new_key

    typer.echo(new_key())


@secrets_app.command("rotate-key")
def rotate_key(
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Re-encrypt every stored secret with the first key of TREADLE_SECRET_KEY."""
    from treadle.clientlib.audit import Auditor, Change, database_principal
    from treadle.common.errors import ConfigurationError, ServiceUnavailable
    from treadle.common.secret_box import SecretNotDecrypted
    from treadle.scheduler.service.secret_rotation import rotate_secrets
    from treadle.scheduler.store import Store
    from treadle.scheduler.store.base import utc_now

    settings = load_settings()
    configured = settings.secret_key.get_secret_value() if settings.secret_key else None
    try:
        with Store.open(settings.database_url, secret_key=configured) as store:
            by = Auditor(store.unit_of_work, database_principal(identity()), utc_now)
            try:
                report = rotate_secrets(store, store.keys.keyring())
            except SecretNotDecrypted as exc:
                by.attempted([Change("secrets.rotate-key", None)], exc)
                raise
            with by.audited(Change("secrets.rotate-key", None, report.as_dict())):
                pass
    except ConfigurationError as exc:
        fail(str(exc))
    except (SecretNotDecrypted, ServiceUnavailable) as exc:
        fail(str(exc), ExitCode.FAILED)
    if as_json:
        print_json(report.as_dict())
        return
    typer.echo(
        f"keystore: {report.keystore_rotated} re-encrypted, {report.keystore_current} "
        f"already current, {report.keystore_encrypted_from_plain} encrypted from plain text"
    )
    typer.echo(
        f"run secrets: {report.run_secrets_rotated} re-encrypted, "
        f"{report.run_secrets_current} already current"
    )
    typer.echo(
        f"webhooks: {report.webhooks_rotated} re-encrypted, "
        f"{report.webhooks_current} already current"
    )
