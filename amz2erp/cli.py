"""The command line. Thin Click commands over fetch → map → save functions; one error boundary (`main`)
turns every failure into a one-line ``Error: …`` on stderr and a documented exit code (the table below is
made from `amz2erp.errors.ExitCode`, as is the one in --help).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from amz2erp import __version__
from amz2erp.clock import default_clock
from amz2erp.config import Settings, default_config_path, default_state_path, find_config, load_settings
from amz2erp.errors import Amz2ErpError, ConfigError, ExitCode, exit_code_table
from amz2erp.log import MASKER, setup_logging
from amz2erp.ui import Reporter, plural

if TYPE_CHECKING:
    from amz2erp.engine.audit import AuditResult
    from amz2erp.engine.plan import PlannedWrite
    from amz2erp.engine.runtime import Runtime

EXIT_CODES_HELP = "\b\nExit codes:\n" + exit_code_table() + "\n"
__doc__ = (__doc__ or "") + "\nExit codes:\n" + exit_code_table() + "\n"


@dataclass
class App:
    """What every command gets: options, the settings (loaded and validated once, on first use), output."""

    config_path: str | None = None
    verbose: int = 0
    quiet: bool = False
    json_mode: bool = False
    traceback: bool = False
    reporter: Reporter = field(default_factory=Reporter)
    _settings: Settings | None = field(default=None, repr=False)
    _settings_path: Path | None = None

    def apply_output_options(self) -> None:
        """(Re)configure logging and the reporter from the options; runs again when options follow the command."""
        setup_logging(self.verbose, quiet=self.quiet)
        self.reporter.quiet = self.quiet
        self.reporter.json_mode = self.json_mode

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


# --- global options: accepted before the command and after it, with the same meaning ----------------------


def _global_params(*, after_command: bool) -> list[click.Option]:
    """The global options. Before the command they are the group's parameters; after it the same options are
    added to every command (by `Amz2ErpGroup`) and fold their values into the one `App`."""
    kw: dict[str, Any] = {"expose_value": False, "callback": _late_global} if after_command else {}
    return [
        click.Option(["--config", "config_path"], type=click.Path(dir_okay=False), default=None,
                     help="Config file (default: $AMZ2ERP_CONFIG, ./amz2erp.toml, ~/.config/amz2erp/config.toml).",
                     **kw),
        click.Option(["-v", "--verbose"], count=True, help="More log output (-vv for debug, with every request).",
                     **kw),
        click.Option(["-q", "--quiet"], is_flag=True, help="Only warnings and errors: no tables, no progress.", **kw),
        click.Option(["--json", "json_mode"], is_flag=True,
                     help="Machine-readable JSON on stdout (also when the run fails).", **kw),
        click.Option(["--traceback"], is_flag=True, help="Show the stack trace of an error (debugging).", **kw),
    ]


def _late_global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """A global option given after the command: same meaning as before it (-v counts add up)."""
    if value is None or value is False or value == 0:
        return  # not given here
    app = ctx.find_object(App)
    if app is None:  # pragma: no cover - the group callback always creates it
        return
    if param.name == "verbose":
        app.verbose += int(value)
    else:
        setattr(app, str(param.name), value)
    app.apply_output_options()


class Amz2ErpGroup(click.Group):
    """Gives every command the global options, so `amz2erp check --json` means `amz2erp --json check`."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        names = {p.name for p in cmd.params}
        cmd.params.extend(p for p in _global_params(after_command=True) if p.name not in names)
        super().add_command(cmd, name)


@click.group(cls=Amz2ErpGroup, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
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
    # `run` passes its App in (so the error boundary sees --json); a bare `cli()` call gets a new one.
    app = ctx.obj if isinstance(ctx.obj, App) else App()
    app.config_path, app.verbose, app.quiet, app.json_mode = config_path, verbose, quiet, json_mode
    app.traceback = traceback
    app.apply_output_options()
    ctx.obj = app


cli.params[:0] = _global_params(after_command=False)


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
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(config_template())
        os.chmod(target, 0o600)
    except OSError as exc:
        # A place the user cannot write to is their mistake to fix (exit 2), not a bug (exit 70).
        raise ConfigError(f"cannot write {exc.filename or target}: {exc.strerror or exc}; "
                          "choose another --path") from None
    app.reporter.line(f"Wrote {target} (mode 0600). Fill in [amazon], [erpnext] and [defaults], then run "
                      f"`amz2erp --config {target} check`.")
    app.reporter.emit_json({"path": str(target)})
    return ExitCode.OK


# --- status ----------------------------------------------------------------------------------------------


@cli.command()
@click.option("--limit", default=20, show_default=True, help="How many failed records and runs to list.")
@click.option("--settlements", "show_settlements", is_flag=True,
              help="Also ask Amazon for the open settlement and its running total (one Finances call).")
@pass_app
def status(app: App, limit: int, show_settlements: bool) -> int:
    """Show sync cursors, the last runs and the records that failed.

    Example: amz2erp --json status
    """
    from amz2erp.state import Kind, StateStore, Status

    try:
        state_path = app.settings.state.path
    except Amz2ErpError:
        if app.config_path or os.environ.get("AMZ2ERP_CONFIG"):
            raise
        state_path = default_state_path()
    if not state_path.exists():
        app.reporter.line(f"No state yet at {state_path}: nothing has been synced.")
        app.reporter.emit_json({"state": str(state_path), "cursors": [], "runs": [], "failed": [],
                                "failed_total": 0, "drift": [], "drift_total": 0})
        return ExitCode.OK
    with StateStore(state_path) as state:
        cursors = state.cursors()
        runs = state.last_runs(limit)
        failed_all = state.entries(status=Status.FAILED)
        drifted = [e for e in state.entries(Kind.ORDER, Status.DONE) if e.info.get("drift")]
        counts = {kind.value: {"done": state.count(kind, Status.DONE), "failed": state.count(kind, Status.FAILED)}
                  for kind in Kind}
    failed = failed_all[:limit]
    r = app.reporter
    r.table("Cursors", ["stream", "marketplace", "up to", "updated"],
            [(c["stream"], marketplace_code(c["marketplace"]), c["value"], c["updated_at"]) for c in cursors],
            ids=("up to", "updated"))
    r.table("Last runs", ["#", "command", "started", "took", "exit"],
            [(x["id"], x["command"], x["started_at"], _took(x["started_at"], x["ended_at"]),
              "" if x["exit_code"] is None else x["exit_code"]) for x in runs], ids=("command", "started"))
    r.table("Ledger", ["kind", "done", "failed"], [(k, v["done"], v["failed"]) for k, v in counts.items()])
    from amz2erp.engine.orders import group_failures

    causes = group_failures((e.key, e.last_error or "") for e in failed_all if e.kind is Kind.ORDER)
    if causes:
        r.table("Why orders failed", ["orders", "cause", "e.g."], [(c.count, c.cause, c.example) for c in causes],
                ids=("e.g.",))
    if failed:
        r.table("Failed records (retried on the next run, or now with `amz2erp retry`)",
                ["kind", "key", "marketplace", "attempts", "error"],
                [(e.kind, e.key, marketplace_code(e.marketplace), e.attempts, e.last_error or "") for e in failed],
                ids=("key",))
        if len(failed_all) > len(failed):
            r.line(f"… and {len(failed_all) - len(failed)} more (`amz2erp status --limit {len(failed_all)}` "
                   "lists them all).")
    else:
        r.line("No failed records.")
    if drifted:
        # Lines, not a table: the differences are long and the ids must stay whole on any width.
        r.line(f"Orders changed on Amazon after their Sales Order was submitted (drift): {len(drifted)}")
        for e in drifted[:limit]:
            r.line(f"  {e.key} ({marketplace_code(e.marketplace)}) → {e.erp_name or '?'}, noticed {e.updated_at}:"
                   f"\n      {e.info['drift']}")
        if len(drifted) > limit:
            r.line(f"  … and {len(drifted) - limit} more (`amz2erp status --json` lists them all).")
    with StateStore(state_path) as settlement_state:
        settlements = _settlement_status(app, settlement_state, show_settlements)  # settlements
    r.emit_json({
        **settlements,
        "state": str(state_path),
        "cursors": [dict(c, marketplace_code=marketplace_code(c["marketplace"])) for c in cursors],
        "runs": runs,
        "ledger": counts,
        "failed": [{"kind": e.kind, "key": e.key, "marketplace": marketplace_code(e.marketplace),
                    "attempts": e.attempts, "error": e.last_error} for e in failed],
        "failed_total": len(failed_all),
        "drift": [{"key": e.key, "erp_name": e.erp_name, "marketplace": marketplace_code(e.marketplace),
                   "updated_at": e.updated_at, "differences": e.info["drift"]} for e in drifted],
        "drift_total": len(drifted),
        "failure_causes": [{"orders": c.count, "cause": c.cause, "example": c.example} for c in causes],
    })
    return ExitCode.OK


def _took(started: str, ended: str | None) -> str:
    """How long a run took (its full end time is in --json); a run without an end is running or was killed."""
    if not ended:
        return "(running or killed)"
    try:
        seconds = int((datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds())
    except ValueError:
        return ended
    minutes, seconds = divmod(max(0, seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s" if minutes \
        else f"{seconds}s"


def marketplace_code(value: str | None) -> str:
    """US for ATVPDKIKX0DER: the code a seller knows; anything unknown is shown as stored."""
    from amz2erp.amazon import marketplaces as mp

    if not value:
        return ""
    market = mp.BY_ID.get(value)
    return market.code if market else value


# --- shared options ----------------------------------------------------------------------------------------


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2023-01-01") from None


def _parse_chunk(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    from amz2erp.engine.windows import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except Amz2ErpError as exc:
        raise click.BadParameter(str(exc)) from None


marketplace_option = click.option(
    "--marketplace", "marketplaces", multiple=True, metavar="CODE",
    help="Only this marketplace (country code or id; repeatable). Default: all configured.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Fetch and map, print what would be written; "
                                                              "write nothing, move no cursor.")
mode_option = click.option("--mode", type=click.Choice(["api", "report", "auto"]), default=None,
                           help="Read orders per call (api), from the bulk orders report (report), or pick by "
                                "window size (auto, the default from [sync] mode).")


@dataclass
class RunSummary:
    """The one ``--json`` document every sync command ends with (sync-products, sync-orders, retry, backfill,
    sync-settlements).
    Every key is always there; a key a command has nothing for is empty (or null). README, Commands, lists
    them."""

    failed: int  # records that failed (exit 1 when any)
    counts: dict[str, int]  # "summary": what happened, counted ("orders created", "listings ok", …)
    exit_code: int
    amended: list[tuple[str, str, str]] = field(default_factory=list)  # (Amazon order, cancelled, amendment)
    plans: list[PlannedWrite] | None = None  # --dry-run: what would be written; null otherwise
    failure_causes: list[str] = field(default_factory=list)  # one line per cause of failed orders
    inactive: list[str] = field(default_factory=list)  # sync-products: inactive listings ("US|SKU")
    unreachable: list[str] = field(default_factory=list)  # backfill: ranges older than Amazon's horizon
    chunks: int | None = None  # backfill: chunks in the range
    settlements: list[dict[str, Any]] | None = None  # sync-settlements: one object per settlement; null otherwise

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "exit_code": self.exit_code,
            "error": f"{plural(self.failed, 'record')} failed (`amz2erp status` lists them)" if self.failed else None,
            "summary": dict(sorted(self.counts.items())),
            "amended": [{"amazon_order_id": oid, "cancelled": old, "amended": new} for oid, old, new in self.amended],
            "plans": None if self.plans is None else [p.as_dict() for p in self.plans],
            "failure_causes": self.failure_causes,
            "inactive": self.inactive,
            "unreachable": self.unreachable,
            "chunks": self.chunks,
            "settlements": self.settlements,
        }


def _finish(app: App, rt: Runtime, title: str, failed: int, *, plans: list[PlannedWrite] | None = None,
            failure_causes: list[str] | None = None, inactive: list[str] | None = None,
            unreachable: list[str] | None = None, chunks: int | None = None,
            settlements: list[dict[str, Any]] | None = None) -> int:
    """Every sync ends the same way: exit 1 when records failed, a summary table (or the JSON `RunSummary`)."""
    rt.exit_code = ExitCode.PARTIAL if failed else ExitCode.OK
    summary = RunSummary(failed, rt.counts.as_dict(), int(rt.exit_code), list(rt.amendments), plans,
                         failure_causes or [], inactive or [], unreachable or [], chunks, settlements)
    app.reporter.table(title, ["what", "count"], sorted(summary.counts.items()))
    if summary.amended:  # an amendment cancels a submitted document: always named, never only counted
        app.reporter.table("Sales Orders amended (changed on Amazon after submit)",
                           ["Amazon order", "cancelled", "amendment"], summary.amended,
                           ids=("Amazon order", "cancelled", "amendment"))
    app.reporter.emit_json(summary.to_json())
    return rt.exit_code


def _print_plans(app: App, plans: list[PlannedWrite]) -> None:
    if app.json_mode:
        return
    for plan in plans:
        app.reporter.line(plan.line())
        if app.verbose and plan.body():
            app.reporter.line(json.dumps(plan.body(), indent=2, default=str, ensure_ascii=False))


# --- check / setup ---------------------------------------------------------------------------------------


@cli.command()
@pass_app
def check(app: App) -> int:
    """Prove the credentials and the ERPNext masters before anything is written.

    Example: amz2erp --json check
    """
    from amz2erp.amazon.client import AmazonClient
    from amz2erp.erpnext.checks import checks_exit_code, run_checks
    from amz2erp.erpnext.client import ErpNextClient

    settings = app.settings
    erp = ErpNextClient(settings.erpnext, masker=MASKER)
    with AmazonClient(settings.amazon, clock=default_clock(), masker=MASKER) as amazon:
        results = run_checks(erp, settings, amazon=amazon, progress=app.reporter.info)
    for r in results:
        text = f"{'✓' if r.ok else '✗'} {r.name}: {r.detail}" + ("" if r.ok or not r.fix else f"\n    → {r.fix}")
        if r.ok or not app.quiet:
            app.reporter.line(text)
        elif not app.json_mode:
            app.reporter.warn(text)  # -q still shows what is wrong
    failed = [r for r in results if not r.ok]
    code = checks_exit_code(results) if failed else ExitCode.OK
    app.reporter.emit_json({"ok": not failed, "exit_code": int(code), "checks": [
        {"name": r.name, "ok": r.ok, "detail": r.detail, "fix": r.fix} for r in results],
        **({"error": f"{len(failed)} of {plural(len(results), 'check')} failed"} if failed else {})})
    if failed:
        # One Error line like every failing command (scripts and cron read stderr), naming the first failure.
        _error(f"{len(failed)} of {plural(len(results), 'check')} failed; first: {failed[0].name}: "
               f"{failed[0].detail}")
    else:
        app.reporter.info(f"All {plural(len(results), 'check')} passed.")
    return code


@cli.command()
@dry_run_option
@pass_app
def setup(app: App, dry_run: bool) -> int:
    """Create the custom fields, charge accounts and groups amz2erp needs in ERPNext (idempotent).

    Example: amz2erp setup --dry-run
    """
    from amz2erp.erpnext.client import ErpNextClient
    from amz2erp.erpnext.setup import apply_setup, plan_setup

    settings = app.settings
    erp = ErpNextClient(settings.erpnext, masker=MASKER)
    actions = plan_setup(erp, settings)
    if not actions:
        app.reporter.line("Nothing to do: ERPNext already has everything amz2erp needs.")
        app.reporter.emit_json({"actions": [], "applied": False})
        return ExitCode.OK
    for action in actions:
        app.reporter.line(("would " if dry_run else "") + action.describe())
    if not dry_run:
        apply_setup(erp, actions)
        app.reporter.info(f"Done: {plural(len(actions), 'change')}.")
    app.reporter.emit_json({"actions": [a.describe() for a in actions], "applied": not dry_run})
    return ExitCode.OK


# --- syncs -----------------------------------------------------------------------------------------------


@cli.command("sync-products")
@click.option("--after", callback=_parse_date, help="Only listings opened on or after this date (YYYY-MM-DD).")
@marketplace_option
@dry_run_option
@pass_app
def sync_products_cmd(app: App, after: date | None, marketplaces: tuple[str, ...], dry_run: bool) -> int:
    """Amazon listings → ERPNext Items and Item Prices (run before orders).

    Example: amz2erp sync-products --after 2023-01-01
    """
    from amz2erp.engine.products import sync_products
    from amz2erp.engine.runtime import open_runtime

    with open_runtime(app.settings, app.reporter, "sync-products" + (" --dry-run" if dry_run else "")) as rt:
        result = sync_products(rt, after=after, marketplaces=marketplaces, dry_run=dry_run)
        if dry_run:
            _print_plans(app, result.plans)
        if result.inactive:
            app.reporter.info(f"{plural(len(result.inactive), 'inactive listing')} (items.inactive = "
                              f"{app.settings.items.inactive!r}): " + ", ".join(result.inactive[:10])
                              + (" …" if len(result.inactive) > 10 else ""))
        code = _finish(app, rt, "sync-products" + (" (dry run)" if dry_run else ""), result.failed,
                       plans=result.plans if dry_run else None, inactive=result.inactive)
    return code


@cli.command("sync-orders")
@click.option("--after", callback=_parse_date,
              help="Start from this date instead of the stored cursor (YYYY-MM-DD).")
@marketplace_option
@dry_run_option
@mode_option
@pass_app
def sync_orders_cmd(app: App, after: date | None, marketplaces: tuple[str, ...], dry_run: bool,
                    mode: str | None) -> int:
    """Amazon orders updated since the last run → Customers, Addresses, Sales Orders (cron-safe).

    Example: amz2erp sync-orders
    """
    from amz2erp.engine.runtime import open_runtime
    from amz2erp.engine.sync import sync_orders

    with open_runtime(app.settings, app.reporter, "sync-orders" + (" --dry-run" if dry_run else "")) as rt:
        result = sync_orders(rt, after=after, marketplaces=marketplaces, dry_run=dry_run, mode=mode)
        if dry_run:
            _print_plans(app, result.plans)
        causes = _report_failures(app, result.failures)
        code = _finish(app, rt, "sync-orders" + (" (dry run)" if dry_run else ""), result.failed,
                       plans=result.plans if dry_run else None, failure_causes=causes)
        if result.failed:
            app.reporter.warn(f"{plural(result.failed, 'order')} failed; they stay in the ledger and are retried next run "
                              "(`amz2erp status` lists them, `amz2erp retry` retries now).")
    return code


def _report_failures(app: App, failures: list[tuple[str, str]]) -> list[str]:
    """One line per cause of failure with its count, not one per order (also returned for --json)."""
    from amz2erp.engine.orders import group_failures

    lines = [cause.line() for cause in group_failures(failures)]
    for line in lines:
        app.reporter.info(line)
    return lines


# --- settlements -----------------------------------------------------------------------------------------


@cli.command("sync-settlements")
@click.option("--since", callback=_parse_date,
              help="Rebuild settlements started on or after this date from Finances (history older than the "
                   "90 days of reports; YYYY-MM-DD).")
@click.option("--file", "files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A V2 flat-file settlement report downloaded from Seller Central (repeatable).")
@marketplace_option
@dry_run_option
@pass_app
def sync_settlements_cmd(app: App, since: date | None, files: tuple[Path, ...], marketplaces: tuple[str, ...],
                         dry_run: bool) -> int:
    """Amazon settlements (payouts) → one submitted Journal Entry each, bank line = the deposit (cron-safe).

    Example: amz2erp sync-settlements --dry-run
    """
    from amz2erp.engine.runtime import open_runtime
    from amz2erp.engine.settlements import sync_settlements

    title = "sync-settlements" + (" (dry run)" if dry_run else "")
    with open_runtime(app.settings, app.reporter, "sync-settlements" + (" --dry-run" if dry_run else "")) as rt:
        result = sync_settlements(rt, since=since, files=files, marketplaces=marketplaces, dry_run=dry_run)
        _print_settlements(app, result.results, dry_run)
        code = _finish(app, rt, title, result.failed, plans=result.plans if dry_run else None,
                       settlements=[r.as_dict() for r in result.results])
        if result.failed:
            app.reporter.warn(f"{plural(result.failed, 'settlement')} not posted: see the lines above "
                              "(`amz2erp status` lists them).")
    return code


def _print_settlements(app: App, results: list[Any], dry_run: bool) -> None:
    r = app.reporter
    if results:
        # the period is in --json and in the entry's remark: 80 columns keep the ids whole
        r.table("Settlements", ["settlement", "deposit", "total", "bank line", "outcome", "entry"],
                [(x.key, x.deposit_date or "", f"{x.total if x.total is not None else ''} {x.currency}",
                  "" if x.bank_line is None else x.bank_line, x.outcome.value, x.journal_entry or "")
                 for x in results], ids=("settlement", "deposit", "entry"))
    else:
        r.line("No closed settlement to post.")
    for x in results:
        if x.outcome.is_problem and x.detail:
            r.warn(x.detail)
        if dry_run and x.lines and not app.json_mode:
            r.line(f"would post Journal Entry for settlement {x.key} (deposit {x.deposit_date}, {x.currency}):")
            for line in x.lines:
                debit = line["debit"] if line["debit"] != "0.00" else ""
                credit = line["credit"] if line["credit"] != "0.00" else ""
                r.line(f"  {line['account']:<44} {debit:>12} {credit:>12}  {line['remark']}")
        if x.unmapped:
            r.warn(f"settlement {x.key}: {plural(len(x.unmapped), 'row')} match no category and went to the "
                   "suspense account: " + ", ".join(sorted({u['key'] for u in x.unmapped})[:5]))
        for what, problems in (("settled without a Sales Order", x.without_sales_order),
                               ("settled amount ≠ Sales Order total", x.total_differs)):
            if problems:
                shown = ", ".join(p.order_id + (f" ({p.settled} vs {p.sales_order} {p.grand_total})"
                                                if p.sales_order else f" ({p.settled})") for p in problems[:10])
                r.info(f"settlement {x.key}: {plural(len(problems), 'order')} {what}: {shown}"
                       + (" …" if len(problems) > 10 else ""))


def _settlement_status(app: App, state: Any, ask_amazon: bool) -> dict[str, Any]:
    """Posted and failed settlements (state); the open one with its running total only when asked: it needs
    a Finances call, and `status` otherwise never leaves this machine."""
    from amz2erp.state import Kind

    entries = state.entries(Kind.SETTLEMENT)
    r = app.reporter
    if entries:
        r.table("Settlements", ["settlement", "status", "entry", "deposit", "total"],
                [(e.key, e.status.value, e.erp_name or "", e.info.get("deposit", ""),
                  f"{e.info.get('total', '')} {e.info.get('currency', '')}".strip()) for e in entries], ids=("settlement", "entry", "deposit"))
    pending: list[dict[str, Any]] = []
    if ask_amazon:
        from amz2erp.amazon.client import AmazonClient
        from amz2erp.engine.settlements import open_groups

        clock = default_clock()
        with AmazonClient(app.settings.amazon, clock=clock) as amazon:
            pending = open_groups(amazon, clock.now())
        for p in pending:
            r.line(f"Open settlement (pending, not posted until Amazon closes it): group {p['group_id']} "
                   f"since {p['start']}, running total {p['running_total']} {p['currency']}")
        if not pending:
            r.line("No open settlement.")
    return {"settlements": [{"settlement_id": e.key, "status": e.status.value, "journal_entry": e.erp_name,
                             "error": e.last_error, **e.info} for e in entries],
            **({"open_settlements": pending} if ask_amazon else {})}


@cli.command()
@click.argument("order_ids", nargs=-1)
@click.option("--forget", is_flag=True, help="Remove these failed orders from the ledger instead (they are "
                                             "never retried again unless Amazon updates them).")
@pass_app
def retry(app: App, order_ids: tuple[str, ...], forget: bool) -> int:
    """Retry the orders that failed (or the given Amazon order ids) now.

    \b
    Example: amz2erp retry 111-1234567-1234567
             amz2erp retry --forget 111-1234567-1234567
    """
    from amz2erp.engine.retry import check_order_ids, retry_failed
    from amz2erp.engine.runtime import open_runtime

    if forget:
        return _forget_failed(app, check_order_ids(order_ids))
    with open_runtime(app.settings, app.reporter, "retry") as rt:
        total = retry_failed(rt, ids=order_ids)
        if total.processed == 0:
            app.reporter.line("No failed orders to retry.")
        causes = _report_failures(app, total.failures)
        code = _finish(app, rt, "retry", total.failed, failure_causes=causes)
    return code


def _forget_failed(app: App, order_ids: list[str]) -> int:
    from amz2erp.errors import UsageError
    from amz2erp.state import Kind, RunLock, StateStore, Status

    if not order_ids:
        raise UsageError("retry --forget: name the failed order ids to remove (`amz2erp status` lists them)")
    state_path = app.settings.state.path
    if not state_path.exists():
        raise UsageError(f"no state yet at {state_path}: there are no failed orders to forget")
    with RunLock(state_path), StateStore(state_path) as state:
        failed = {e.key for e in state.entries(Kind.ORDER, Status.FAILED)}
        unknown = [i for i in order_ids if i not in failed]
        if unknown:
            raise UsageError(f"not a failed order in the ledger: {', '.join(unknown)} (nothing was removed)")
        removed = state.forget_failed(Kind.ORDER, order_ids)
    for e in removed:
        tries = f"{e.attempts} {'attempt' if e.attempts == 1 else 'attempts'}"
        app.reporter.line(f"forgot failed order {e.key} ({tries}): {e.last_error or ''}".rstrip())
    app.reporter.emit_json({"forgotten": [{"key": e.key, "attempts": e.attempts, "error": e.last_error}
                                          for e in removed]})
    return ExitCode.OK


@cli.command()
@click.option("--from", "date_from", required=True, callback=_parse_date, help="Oldest day (YYYY-MM-DD).")
@click.option("--to", "date_to", callback=_parse_date, help="Newest day, inclusive (default: now).")
@click.option("--chunk", callback=_parse_chunk,
              help="Window size: 12h, 7d, 2w … (default: [sync] chunk_days; at most 30 days when read by report).")
@click.option("--no-products", is_flag=True, help="Skip the sync-products run that precedes the orders.")
@marketplace_option
@dry_run_option
@mode_option
@pass_app
def backfill(app: App, date_from: date, date_to: date | None, chunk: timedelta | None, no_products: bool,
             marketplaces: tuple[str, ...], dry_run: bool, mode: str | None) -> int:
    """Import history newest-first in chunks; resumable; never moves sync-orders' cursor.

    Example: amz2erp backfill --from 2025-01-01 --to 2025-03-31 --chunk 7d
    """
    from amz2erp.engine.backfill import backfill as run_backfill
    from amz2erp.engine.runtime import open_runtime
    from amz2erp.engine.windows import chunk_size

    if date_to is not None and date_to < date_from:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    chunk = chunk_size(app.settings.sync, chunk, mode)  # refused before anything runs, products included
    with open_runtime(app.settings, app.reporter, "backfill" + (" --dry-run" if dry_run else "")) as rt:
        result = run_backfill(rt, date_from=date_from, date_to=date_to, chunk=chunk, marketplaces=marketplaces,
                              dry_run=dry_run, mode=mode, products=not no_products)
        failed = result.products_failed + result.failed
        if dry_run:
            _print_plans(app, result.plans)
        causes = _report_failures(app, result.failures)
        if result.chunks_done_before:
            app.reporter.info(f"{result.chunks_done_before} of {plural(result.chunks, 'chunk')} were already done "
                              "(resumed from the checkpoints).")
        code = _finish(app, rt, "backfill" + (" (dry run)" if dry_run else ""), failed,
                       plans=result.plans if dry_run else None, failure_causes=causes,
                       unreachable=result.unreachable, chunks=result.chunks)
    return code


# --- audit -----------------------------------------------------------------------------------------------


@cli.command("audit")
@click.option("--from", "date_from", callback=_parse_date,
              help="First day, marketplace-local (YYYY-MM-DD; default: [sync] after, else 90 days ago).")
@click.option("--to", "date_to", callback=_parse_date, help="Last day, inclusive (default: today).")
@click.option("--fix", is_flag=True, help="Repair what is safe: import missing orders, cancel orders Amazon "
                                          "cancelled, post missing settlements (never duplicates or unknowns).")
@marketplace_option
@click.option("--dry-run", is_flag=True, help="With --fix: print what the repairs would write; write nothing.")
@pass_app
def audit_cmd(app: App, date_from: date | None, date_to: date | None, fix: bool, marketplaces: tuple[str, ...],
              dry_run: bool) -> int:
    """Prove ERPNext holds every Amazon order and settlement exactly once, with the right totals.

    \b
    Exit 0 when everything ties, 1 when anything does not (also when only what --fix must not touch
    remains: duplicates, unknown orders), 2 for bad input.
    Example: amz2erp audit --from 2026-01-01 --to 2026-03-31 --json
    """
    from amz2erp.engine.audit import audit, check_range
    from amz2erp.engine.runtime import open_runtime

    if dry_run and not fix:
        raise click.BadParameter("--dry-run only applies to --fix (a plain audit writes nothing)",
                                 param_hint="--dry-run")
    today = default_clock().now().date()
    start = date_from or app.settings.sync.after or today - timedelta(days=90)
    end = date_to or today
    check_range(start, end, today)
    command = "audit" + (" --fix" if fix else "") + (" --dry-run" if dry_run else "")
    with open_runtime(app.settings, app.reporter, command) as rt:
        result = audit(rt, start=start, end=end, marketplaces=marketplaces, fix=fix, dry_run=dry_run)
        remaining = result.remaining
        failed_fixes = [f for f in result.fixes if not f.ok]
        rt.exit_code = ExitCode.PARTIAL if remaining or failed_fixes else ExitCode.OK
        _print_audit(app, result, dry_run)
        app.reporter.emit_json({
            "ok": rt.exit_code == ExitCode.OK, "exit_code": int(rt.exit_code),
            "error": f"{plural(len(remaining), 'finding')} remain" if remaining else None,
            "from": result.start.isoformat(), "to": result.end.isoformat(), "marketplaces": result.marketplaces,
            "months": [t.as_dict() for t in result.totals],
            "findings": [f.as_dict() for f in result.findings],
            "remaining": [f.as_dict() for f in remaining],
            "fixed": [f.as_dict() for f in result.fixes],
            "plans": [p.as_dict() for p in result.plans] if dry_run else None,
            "settlements_checked": result.settlements_checked, "notes": result.notes,
        })
        code = rt.exit_code
    return code


def _print_audit(app: App, result: AuditResult, dry_run: bool) -> None:
    r = app.reporter
    r.line(f"Audit {result.start} → {result.end}, {', '.join(result.marketplaces)}")
    # "orders": placed on Amazon / of which amz2erp imports / live Sales Orders dated in the month
    r.table("Per marketplace and month", ["mkt", "month", "orders", "Amazon total", "ERPNext total", "difference",
                                          "findings"],
            [(marketplace_code(t.marketplace) or "?", t.month,
              f"{t.amazon_orders}/{t.amazon_importable}/{t.erpnext_orders}", f"{t.amazon_total} {t.currency}",
              f"{t.erpnext_total} {t.currency}", t.amazon_total - t.erpnext_total,
              ", ".join(f"{n} {k}" for k, n in sorted(t.findings.items())) or "ties")
             for t in result.totals], ids=("month", "Amazon total", "ERPNext total"))
    r.info("orders: placed on Amazon / to import (not cancelled, not pending) / live Sales Orders in ERPNext")
    for f in result.findings:
        where = f"{marketplace_code(f.marketplace) or '?'} {f.month}"
        docs = f" {', '.join(f.documents)}" if f.documents else ""
        sides = "; ".join(x for x in (f"Amazon: {f.amazon}" if f.amazon else "",
                                      f"ERPNext: {f.erpnext}" if f.erpnext else "") if x)
        ledger = f" (amz2erp wrote {f.known_to_ledger})" if f.known_to_ledger else ""
        r.line(f"{f.kind.value}: {f.key}{docs} [{where}]{ledger}" + (f" — {sides}" if sides else ""))
        if not any(x.finding is f for x in result.fixes):
            r.line(f"    → {f.kind.advice}")
    for x in result.fixes:
        verb = "would repair" if dry_run and x.ok else "repaired" if x.ok else "not repaired"
        r.line(f"{verb} {x.finding.kind.value} {x.finding.key}: {x.outcome}"
               + (f" {x.document}" if x.document else "") + (f" ({x.detail})" if x.detail else ""))
    if dry_run:
        _print_plans(app, result.plans)
    for note in result.notes:
        r.info(note)
    remaining = result.remaining
    if not result.findings:
        r.line("Everything ties: every order and settlement is in ERPNext exactly once, with Amazon's totals.")
    elif remaining:
        fixable = sum(1 for f in remaining if f.fixable)
        parts = [f"{plural(len(remaining), 'finding')} remain: the books do not tie"]
        if fixable and not result.fixes:
            parts.append(f"`amz2erp audit --fix` repairs {fixable}")
        if len(remaining) - fixable:
            parts.append(f"{len(remaining) - fixable} need a person (what to do is under each)")
        r.warn("; ".join(parts))


@cli.command()
@click.option("--every", default="15m", show_default=True, callback=_parse_chunk, help="How often sync-orders runs.")
@click.option("--products-every", default="24h", show_default=True, callback=_parse_chunk,
              help="How often sync-products runs.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
              help="Log file (default: next to the state database).")
@click.option("--install", is_flag=True, help="Add the lines to your crontab (idempotent; one block per config).")
@click.option("--uninstall", is_flag=True, help="Remove this config's lines from your crontab.")
@pass_app
def cron(app: App, every: timedelta, products_every: timedelta, log_path: str | None, install: bool,
         uninstall: bool) -> int:
    """Print (or --install) crontab lines for unattended syncs; the run lock prevents overlaps.

    Example: amz2erp --config /etc/amz2erp.toml cron --every 15m --install
    """
    from amz2erp import cron as cron_mod

    if install and uninstall:
        raise click.UsageError("--install and --uninstall exclude each other")
    config_path = app.settings_path
    if uninstall:
        removed = cron_mod.uninstall(config_path)
        app.reporter.info(f"Removed the lines for {config_path} from your crontab." if removed
                          else f"Your crontab has no lines for {config_path}.")
        app.reporter.emit_json({"uninstalled": removed, "config": str(config_path)})
        return ExitCode.OK
    log_file = Path(log_path) if log_path else app.settings.state.path.parent / "amz2erp.log"
    lines = cron_mod.cron_lines(config_path, log_file, every, products_every)
    # The file parsed already (settings loaded): re-read only to see which credentials it lacks.
    env_only = cron_mod.env_only_secrets(cron_mod.read_toml(config_path), os.environ)
    if env_only:
        app.reporter.warn("Warning: " + cron_mod.env_warning(env_only))
    if install:
        changed = cron_mod.install(lines, config_path)
        app.reporter.info("Installed into your crontab." if changed else "Your crontab already has these lines.")
    app.reporter.line("\n".join(lines))
    app.reporter.emit_json({"lines": lines, "installed": install, "env_only_secrets": env_only})
    return ExitCode.OK


@cli.command()
@click.option("--orders", default=200, show_default=True, type=click.IntRange(1, 20000),
              help="How many Amazon orders to generate.")
@click.option("--seed", default=7, show_default=True, help="Seed for the generated data.")
@click.option("--keep", is_flag=True, help="Leave the simulators running and print their URLs and config.")
@click.option("--mode", "mode", type=click.Choice(["summary", "invoice"]), default="summary", show_default=True,
              help="[settlements] mode: settlements by category, or Sales Invoices and Credit Notes cleared by them.")
@pass_app
def demo(app: App, orders: int, seed: int, keep: bool, mode: str) -> int:
    """Run the whole pipeline on local simulators (no accounts needed).

    Example: amz2erp demo --orders 500
    Example: amz2erp demo --mode invoice
    """
    from amz2erp.demo import run_demo

    def run_step(args: list[str]) -> int:
        extra = ["-q"] if app.quiet else []
        return run([*extra, *args])

    return run_demo(app.reporter, run_step, orders=orders, seed=seed, keep=keep, mode=mode)


# --- the error boundary ----------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _error(message: str) -> str:
    text = MASKER.mask(message)
    click.echo(f"Error: {text}", err=True)
    return text


def _before_end_of_options(args: list[str], option: str) -> bool:
    """Whether a flag was typed (for failures before Click has parsed it), not after a ``--``."""
    head = args[: args.index("--")] if "--" in args else args
    return option in head


def run(argv: list[str]) -> int:
    """Run the CLI once and map every outcome to a documented exit code (never raises).

    The one error boundary: a failure becomes one ``Error: …`` line on stderr and, with --json, a JSON object
    ``{"ok": false, "error": …, "exit_code": …}`` on stdout unless the command already printed its own."""
    args = list(argv)
    app = App()
    code: int
    error: str | None = None
    try:
        rv = cli.main(args=args, prog_name="amz2erp", standalone_mode=False, obj=app)
        code = int(rv) if isinstance(rv, int) else ExitCode.OK
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        error = _error("interrupted")
        code = ExitCode.INTERRUPTED
    except click.ClickException as exc:
        # Usage errors: Click's own message (with the usage line) is clear; exit 2 whatever Click says.
        exc.show()
        error = MASKER.mask(exc.format_message())
        code = ExitCode.CONFIG
    except KeyboardInterrupt:
        error = _error("interrupted; state is saved, run the same command again to continue")
        code = ExitCode.INTERRUPTED
    except Amz2ErpError as exc:
        if app.traceback or _before_end_of_options(args, "--traceback"):
            click.echo(MASKER.mask(traceback.format_exc()), err=True)
        error = _error(str(exc))
        code = exc.exit_code
    except Exception as exc:  # the boundary: nothing else may escape as a bare traceback
        if app.traceback or _before_end_of_options(args, "--traceback"):
            click.echo(MASKER.mask(traceback.format_exc()), err=True)
        error = _error(f"internal error: {type(exc).__name__}: {exc} (rerun with --traceback and report it)")
        code = ExitCode.INTERNAL
    json_mode = app.json_mode or _before_end_of_options(args, "--json")
    if json_mode and code != ExitCode.OK and not app.reporter.json_emitted:
        sys.stdout.write(json.dumps({"ok": False, "error": error or f"exit code {code}", "exit_code": code},
                                    indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()
    return code


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.exit(run(list(sys.argv[1:] if argv is None else argv)))


__all__ = ["App", "cli", "find_config", "main"]
