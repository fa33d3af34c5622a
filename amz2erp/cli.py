"""The command line. Thin Click commands over fetch → map → save functions; one error boundary (`main`)
turns every failure into a one-line ``Error: …`` on stderr and a documented exit code.

Exit codes:
  0   success
  1   the run finished but some records failed (see `amz2erp status`)
  2   usage or configuration error
  3   Amazon or ERPNext refused the credentials or a permission
  4   Amazon or ERPNext unavailable after retries
  70  internal error (a bug: please report it with --traceback output)
  75  another amz2erp run holds the lock (cron: simply try again later)
  130 interrupted (Ctrl-C, SIGTERM)
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import click

from amz2erp import __version__
from amz2erp.config import Settings, default_config_path, default_state_path, find_config, load_settings
from amz2erp.errors import Amz2ErpError, ExitCode
from amz2erp.log import MASKER, setup_logging
from amz2erp.ui import Reporter

EXIT_CODES_HELP = """\b
Exit codes:
  0   success
  1   finished, but some records failed (see `amz2erp status`)
  2   usage or configuration error
  3   Amazon/ERPNext refused the credentials or a permission
  4   Amazon/ERPNext unavailable after retries
  70  internal error (a bug; rerun with --traceback)
  75  another run holds the lock (cron: try later)
  130 interrupted
"""
INTERNAL_ERROR = 70


@dataclass
class App:
    """What every command gets: options, the settings (loaded and validated once, on first use), output."""

    config_path: str | None
    verbose: int
    quiet: bool
    json_mode: bool
    reporter: Reporter
    _settings: Settings | None = field(default=None, repr=False)
    _settings_path: Path | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings, self._settings_path = load_settings(self.config_path)
            MASKER.add(self._settings.secret_values())
        return self._settings

    @property
    def settings_path(self) -> Path:
        _ = self.settings
        assert self._settings_path is not None
        return self._settings_path


pass_app = click.make_pass_decorator(App)


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar=None,
              help="Config file (default: $AMZ2ERP_CONFIG, ./amz2erp.toml, ~/.config/amz2erp/config.toml).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--json", "json_mode", is_flag=True, help="Machine-readable summary on stdout.")
@click.option("--traceback", is_flag=True, help="Show the stack trace of an error (debugging).")
@click.version_option(__version__, prog_name="amz2erp")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int, quiet: bool, json_mode: bool,
        traceback: bool) -> None:
    """Move an Amazon seller's listings and orders into ERPNext, exactly once.

    \b
    Start with:  amz2erp demo            (everything, on local simulators)
    Then:        amz2erp init; amz2erp check; amz2erp setup
                 amz2erp sync-products; amz2erp sync-orders
    """
    setup_logging(verbose, quiet=quiet)
    ctx.obj = App(config_path=config_path, verbose=verbose, quiet=quiet, json_mode=json_mode,
                  reporter=Reporter(quiet=quiet, json_mode=json_mode))


# --- init ------------------------------------------------------------------------------------------------


def config_template() -> str:
    return resources.files("amz2erp").joinpath("templates/config.toml").read_text(encoding="utf-8")


@cli.command()
@click.option("--path", "path", type=click.Path(dir_okay=False), default=None,
              help="Where to write (default: ~/.config/amz2erp/config.toml).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_app
def init(app: App, path: str | None, force: bool) -> int:
    """Write a commented config file (mode 0600) to fill in.

    Example: amz2erp init --path ./amz2erp.toml
    """
    target = Path(path) if path else default_config_path()
    if target.exists() and not force:
        raise click.UsageError(f"{target} already exists; use --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(config_template())
    os.chmod(target, 0o600)
    app.reporter.line(f"Wrote {target} (mode 0600). Fill in [amazon], [erpnext] and [defaults], then run "
                      f"`amz2erp --config {target} check`.")
    app.reporter.emit_json({"path": str(target)})
    return ExitCode.OK


# --- status ----------------------------------------------------------------------------------------------


@cli.command()
@click.option("--limit", default=20, show_default=True, help="How many failed records and runs to list.")
@pass_app
def status(app: App, limit: int) -> int:
    """Show sync cursors, the last runs and the records that failed.

    Example: amz2erp status --json
    """
    from amz2erp.state import FAILED, StateStore

    try:
        state_path = app.settings.state.path
    except Amz2ErpError:
        if app.config_path or os.environ.get("AMZ2ERP_CONFIG"):
            raise
        state_path = default_state_path()
    if not state_path.exists():
        app.reporter.line(f"No state yet at {state_path}: nothing has been synced.")
        app.reporter.emit_json({"state": str(state_path), "cursors": [], "runs": [], "failed": []})
        return ExitCode.OK
    with StateStore(state_path) as state:
        cursors = state.cursors()
        runs = state.last_runs(limit)
        failed = state.entries(status=FAILED)[:limit]
        counts = {kind: {"done": state.count(kind, "done"), "failed": state.count(kind, FAILED)}
                  for kind in ("order", "item", "item_price", "customer", "address")}
    r = app.reporter
    r.table("Cursors", ["stream", "marketplace", "up to", "updated"],
            [(c["stream"], c["marketplace"], c["value"], c["updated_at"]) for c in cursors])
    r.table("Last runs", ["#", "command", "started", "ended", "exit"],
            [(x["id"], x["command"], x["started_at"], x["ended_at"] or "(running or killed)",
              "" if x["exit_code"] is None else x["exit_code"]) for x in runs])
    r.table("Ledger", ["kind", "done", "failed"], [(k, v["done"], v["failed"]) for k, v in counts.items()])
    if failed:
        r.table("Failed records (retried on the next run, or now with `amz2erp retry`)",
                ["kind", "key", "attempts", "error"],
                [(e.kind, e.key, e.attempts, e.last_error or "") for e in failed])
    else:
        r.line("No failed records.")
    r.emit_json({
        "state": str(state_path),
        "cursors": cursors,
        "runs": runs,
        "ledger": counts,
        "failed": [{"kind": e.kind, "key": e.key, "attempts": e.attempts, "error": e.last_error} for e in failed],
    })
    return ExitCode.OK


# --- the error boundary ----------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _error(message: str) -> None:
    click.echo(f"Error: {MASKER.mask(message)}", err=True)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: run the CLI and map every outcome to a documented exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args
    signal.signal(signal.SIGTERM, _on_sigterm)
    code: int
    try:
        rv = cli.main(args=args, prog_name="amz2erp", standalone_mode=False)
        code = int(rv) if isinstance(rv, int) else ExitCode.OK
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        _error("interrupted")
        code = ExitCode.INTERRUPTED
    except click.ClickException as exc:
        # Usage errors: Click's own message (with the usage line) is clear; exit 2 whatever Click says.
        exc.show()
        code = ExitCode.CONFIG
    except KeyboardInterrupt:
        _error("interrupted; state is saved, run the same command again to continue")
        code = ExitCode.INTERRUPTED
    except Amz2ErpError as exc:
        if show_traceback:
            click.echo(MASKER.mask(traceback.format_exc()), err=True)
        _error(str(exc))
        code = exc.exit_code
    except Exception as exc:  # the boundary: nothing else may escape as a bare traceback
        if show_traceback:
            click.echo(MASKER.mask(traceback.format_exc()), err=True)
        _error(f"internal error: {type(exc).__name__}: {exc} (rerun with --traceback and report it)")
        code = INTERNAL_ERROR
    sys.stdout.flush()
    sys.exit(code)


__all__ = ["App", "cli", "find_config", "main"]
