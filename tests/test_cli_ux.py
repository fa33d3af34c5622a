"""Issue 18, the command line as a user meets it: global options anywhere, output levels, JSON on failure,
`status`, Ctrl-C, `init` into a read-only place, the secrets warning, `cron` blocks and the environment,
table widths, plurals and the config template."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from amz2erp import cron
from amz2erp.cli import run
from amz2erp.config import Settings, load_settings
from amz2erp.state import StateStore
from amz2erp.ui import Reporter, _PlainTask, plural
from tests.conftest import MINIMAL_CONFIG, REPO, SimEnvFactory, amz2erp_cmd, fake_crontab, write_config
from tests.simenv import Result, SimEnv


def _run(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return Result(code, out.getvalue(), err.getvalue())


def _minimal(tmp_path: Path, **overrides: str) -> Path:
    values = dict(refresh_token="refresh-token-value", client_secret="client-secret-value",
                  api_secret="api-secret-value", erp_url="http://127.0.0.1:9", state_path=str(tmp_path / "s.db"))
    values.update(overrides)
    return write_config(tmp_path / "c.toml", MINIMAL_CONFIG.format(**values))


# --- 1. global options after the command ----------------------------------------------------------------


def test_global_options_work_after_the_command(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=12, seed=3, days=5)
    env.setup_erp()
    check = env.run("check", "--json")
    assert check.code == 0, check.err
    assert json.loads(check.out)["ok"] is True
    dry = env.run("sync-orders", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert json.loads(dry.out)["plans"]
    assert env.erp.count("Sales Order") == 0
    status = env.run("status", "--json")
    assert json.loads(status.out)["runs"][0]["command"] == "sync-orders --dry-run"
    # --config after the command too (SimEnv puts one first: here only after)
    alone = _run("status", "--json", "--config", str(env.config_path))
    assert alone.code == 0 and json.loads(alone.out)["state"] == str(env.state_path)
    # the same meaning before and after: identical JSON documents
    before = env.run("--json", "status")
    after = env.run("status", "--json")
    assert json.loads(before.out) == json.loads(after.out)
    quiet = env.run("status", "-q")
    assert quiet.code == 0 and quiet.out == ""
    # -v counts add up wherever they are: -v before and -v after is -vv (DEBUG request lines)
    split = env.run("-v", "check", "-v")
    assert "DEBUG amz2erp.erpnext.client: ERPNext GET /api/" in split.err


def test_traceback_after_the_command_shows_the_stack(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = _run("sync-orders", "--config", str(missing), "--traceback")
    assert result.code == 2
    assert "Traceback (most recent call last)" in result.err
    assert result.err.strip().endswith(f"Error: config file {missing} does not exist "
                                       f"(run `amz2erp init --path {missing}`)")


# --- 2. output levels ----------------------------------------------------------------------------------------


def test_without_a_terminal_progress_is_plain_timestamped_lines(tmp_path: Path) -> None:
    with SimEnv(tmp_path, listings=5, orders=12, seed=3, days=5) as env:
        env.setup_erp()
        result = env.run("sync-orders")  # stderr is a StringIO: not a terminal, as under cron
        assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    stamped = [line for line in lines if re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ", line)]
    assert any(" US orders updated " in line for line in stamped), result.err
    assert any(re.search(r" CA orders updated .*: \d+$", line) for line in stamped), result.err  # the end count
    assert "\x1b[" not in result.err  # no terminal control codes in a log file
    assert "orders created" in result.out  # the summary table


def test_plain_progress_repeats_at_most_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    now = [0.0]
    monkeypatch.setattr("amz2erp.ui.time.monotonic", lambda: now[0])
    task = _PlainTask("orders", 100, said.append)
    for _ in range(10):
        now[0] += 10.0
        task.advance(5)
    task.finish()
    assert said == ["orders: 15/100", "orders: 30/100", "orders: 45/100", "orders: 50/100"]


def test_quiet_prints_no_tables_and_no_progress(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=12, seed=3, days=5)
    env.setup_erp()
    result = env.run("-q", "sync-orders")
    assert result.code == 0
    assert result.out == "" and result.err == ""
    # a failing check still says what is wrong under -q
    env.write_config(api_secret="wrong-secret-value")
    failing = env.run("-q", "check")
    assert failing.code != 0
    assert failing.out == ""
    assert "✗ erpnext credentials" in failing.err and "✓" not in failing.err
    assert "wrong-secret-value" not in failing.err


def test_vv_logs_every_erpnext_request_and_sp_api_operation_without_secrets(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=12, seed=3, days=5)
    env.setup_erp()
    result = env.run("-vv", "sync-orders")
    assert result.code == 0
    debug = result.err
    assert re.search(r"DEBUG amz2erp\.erpnext\.client: ERPNext GET /api/resource/Sales%20Order → 200 \(\d+ ms\)",
                     debug), debug[:3000]
    # new Sales Orders go in insert_many batches, and so do their new buyers' customers: one line per call
    calls = re.findall(r"ERPNext POST /api/method/frappe\.client\.insert_many → 200 \(\d+ ms\)", debug)
    assert len(calls) >= 2, debug[:3000]
    assert re.search(r"DEBUG amz2erp\.amazon: SP-API searchOrders → ok \(\d+ ms\)", debug)
    for secret in (env.erp.api_key, env.erp.api_secret, env.spapi.credentials["lwa_client_secret"],
                   env.spapi.credentials["refresh_token"]):
        assert secret not in debug
    one_v = env.run("-v", "sync-orders")
    assert "DEBUG" not in one_v.err and "INFO" in one_v.err


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_on_a_failed_run_is_still_one_json_object(tmp_path: Path, where: str) -> None:
    missing = str(tmp_path / "nope.toml")
    args = ["--json", "--config", missing, "sync-orders"] if where == "before" else \
        ["sync-orders", "--config", missing, "--json"]
    result = _run(*args)
    assert result.code == 2
    data = json.loads(result.out)
    assert data == {"ok": False, "exit_code": 2, "error": f"config file {missing} does not exist "
                                                           f"(run `amz2erp init --path {missing}`)"}
    usage = _run("check", "--json", "--no-such-option")
    assert usage.code == 2
    assert json.loads(usage.out)["error"] == "No such option '--no-such-option'."


def test_json_on_credentials_refused_exit_3(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=5, seed=3, days=5)
    env.setup_erp()
    env.write_config(api_secret="wrong-secret-value")
    result = env.run("sync-orders", "--json")
    assert result.code == 3
    data = json.loads(result.out)
    assert data["ok"] is False and data["exit_code"] == 3 and "wrong-secret-value" not in result.out
    assert data["error"] in result.err


def test_json_of_a_partly_failed_run_carries_exit_code_1(tmp_path: Path) -> None:
    # no exchange rate for CAD: the CA orders fail, the US ones land
    with SimEnv(tmp_path, listings=6, orders=20, seed=3, days=5) as env:
        env.setup_erp()
        text = env.config_path.read_text().replace('"CAD:USD" = 0.72', "")
        env.config_path.write_text(text)
        result = env.run("sync-orders", "--json")
        assert result.code == 1, result.err
        data = json.loads(result.out)
        assert data["exit_code"] == 1 and data["ok"] is False and data["summary"]["orders failed"] > 0
        assert data["error"] == f"{plural(data['summary']['orders failed'], 'record')} failed " \
                                "(`amz2erp status` lists them)"
        quiet = env.run("-q", "sync-orders")  # the failed orders are retried and fail again: -q still says so
        assert quiet.code == 1 and quiet.out == ""
        assert re.match(r"\d+ orders? failed; they stay in the ledger", quiet.err)
        check = env.run("check", "--json")  # no CAD rate: a check fails, exit 2, the error says how many
        assert check.code == 2
        assert re.fullmatch(r"1 of \d+ checks failed", json.loads(check.out)["error"])


# --- 3. status -------------------------------------------------------------------------------------------


def test_status_shows_more_drift_codes_full_times_and_brackets(tmp_path: Path) -> None:
    state_path = tmp_path / "state.db"
    config = _minimal(tmp_path, state_path=str(state_path))
    with StateStore(state_path) as state:
        for i in range(25):
            state.mark_failed("order", f"111-0000000-{i:07d}", f"missing rate [CAD:USD] for order {i}",
                              marketplace="A2EUQ1WTGCTBG2")
        state.mark_done("order", "113-4987480-5193619", "SAL-ORD-2026-00065", "h", marketplace="ATVPDKIKX0DER",
                        info={"drift": "taxes[Amazon Item Tax - ATC]: 29.22 → 28.60"})
        from datetime import datetime, timezone
        state.set_cursor("orders", "ATVPDKIKX0DER", datetime(2026, 11, 1, 11, 57, 55, tzinfo=timezone.utc))
        run_id = state.start_run("sync-orders --dry-run")
        state.end_run(run_id, 1, {})
    result = _run("--config", str(config), "status", "--limit", "20")
    assert result.code == 0, result.err
    out = result.out
    assert "… and 5 more" in out
    assert "[CAD:USD]" in out  # not swallowed as markup
    assert "taxes[Amazon Item Tax - ATC]: 29.22 → 28.60" in out
    assert "113-4987480-5193619" in out and "SAL-ORD-2026-00065" in out
    assert "2026-11-01T11:57:55+00:00" in out  # full, with the zone
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", out.split("Last runs")[1])
    assert "sync-orders --dry-run" in out  # the command is never wrapped
    assert "ATVPDKIKX0DER" not in out and "A2EUQ1WTGCTBG2" not in out
    assert re.search(r"│ orders\s+│ US ", out)
    for line in out.splitlines():
        if line[:1] in "┏┃┡│└":  # table rows fit 80 columns; plain lines are never cut
            assert len(line) <= 80, line
    data = json.loads(_run("--config", str(config), "status", "--json").out)
    assert data["failed_total"] == 25 and len(data["failed"]) == 20 and data["failed"][0]["marketplace"] == "CA"
    assert data["drift"][0]["differences"] == "taxes[Amazon Item Tax - ATC]: 29.22 → 28.60"


def test_remote_text_with_brackets_is_printed_verbatim() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        Reporter(interactive=False).table("t [bold]x[/bold]", ["a"], [("[red]fix[/red] the [rate]",)])
    assert "[red]fix[/red] the [rate]" in out.getvalue() and "t [bold]x[/bold]" in out.getvalue()


# --- 4. Ctrl-C ---------------------------------------------------------------------------------------------


def test_an_interrupted_report_stream_prints_nothing_at_exit(tmp_path: Path) -> None:
    # What an interrupted report read leaves behind: the document file closed while its line generator is
    # suspended. Collecting the generator must not write into the closed file.
    code = (
        "import gc, tempfile\n"
        "from amz2erp.amazon import reports as rp\n"
        "f = tempfile.TemporaryFile(); f.write(b'a\\tb\\n1\\t2\\n'); f.seek(0)\n"
        "lines = rp.text_lines(f); next(lines)\n"
        "f.close(); del lines; gc.collect()\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok"
    assert "Exception ignored" not in result.stderr and "closed file" not in result.stderr


# --- 5. init ---------------------------------------------------------------------------------------------


def test_init_into_an_unwritable_place_is_one_line_exit_2(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = subprocess.run([*amz2erp_cmd(), "init", "--path", str(a_file / "sub" / "c.toml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot write {a_file / 'sub'}: Not a directory; choose another --path"]


def test_init_into_a_read_only_directory_is_one_line_exit_2(tmp_path: Path) -> None:
    # root writes anywhere a chmod forbids, but not into sysfs: either way the folder refuses the file
    if os.geteuid() == 0:
        locked = Path("/sys")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
    try:
        result = subprocess.run([*amz2erp_cmd(), "init", "--path", str(locked / "amz2erp-test.toml")],
                                capture_output=True, text=True, timeout=60)
    finally:
        if locked != Path("/sys"):
            locked.chmod(0o700)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot write {locked / 'amz2erp-test.toml'}: Permission denied; choose another --path"]


# --- 6. secrets: the permission warning and cron's environment --------------------------------------------


def test_app_id_alone_is_no_secret_for_the_permission_warning(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    config = _minimal(tmp_path)
    text = config.read_text()
    for line in ('refresh_token = "refresh-token-value"\n', 'lwa_client_secret = "client-secret-value"\n',
                 'api_key = "key-1234"\n', 'api_secret = "api-secret-value"\n'):
        assert line in text
        text = text.replace(line, "")
    config.write_text(text)
    config.chmod(0o644)
    for var, value in (("AMZ2ERP_REFRESH_TOKEN", "r" * 10), ("AMZ2ERP_LWA_CLIENT_SECRET", "c" * 10),
                       ("AMZ2ERP_ERPNEXT_API_KEY", "k" * 10), ("AMZ2ERP_ERPNEXT_API_SECRET", "s" * 10)):
        monkeypatch.setenv(var, value)
    with caplog.at_level("WARNING"):
        load_settings(config)
    assert "readable by group or others" not in caplog.text
    config.write_text(text.replace("[erpnext]\n", '[erpnext]\napi_key = "key-1234"\n'))  # one real secret
    with caplog.at_level("WARNING"):
        load_settings(config)
    assert "readable by group or others" in caplog.text


def test_env_only_secrets_rule() -> None:
    file_data = {"amazon": {"lwa_app_id": "app", "refresh_token": ""}, "erpnext": {"api_secret": "x"}}
    environ = {"AMZ2ERP_REFRESH_TOKEN": "r", "AMZ2ERP_LWA_APP_ID": "a", "AMZ2ERP_ERPNEXT_API_SECRET": "s",
               "AMZ2ERP_LWA_CLIENT_SECRET": "c"}
    assert cron.env_only_secrets(file_data, environ) == ["AMZ2ERP_REFRESH_TOKEN", "AMZ2ERP_LWA_CLIENT_SECRET"]
    assert cron.env_only_secrets(file_data, {}) == []


def test_cron_warns_when_secrets_come_from_the_environment(sim_env: SimEnvFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    env = sim_env(listings=5, orders=0)
    text = env.config_path.read_text()
    secret = env.erp.api_secret
    env.config_path.write_text(text.replace(f'api_secret = "{secret}"\n', ""))
    monkeypatch.setenv("AMZ2ERP_ERPNEXT_API_SECRET", secret)
    result = env.run("cron", "--every", "15m")
    assert result.code == 0, result.err
    assert "Warning: AMZ2ERP_ERPNEXT_API_SECRET is set in this shell but not in the config file" in result.err
    assert "crontab -e" in result.err and secret not in result.err + result.out
    assert "sync-orders" in result.out
    monkeypatch.delenv("AMZ2ERP_ERPNEXT_API_SECRET")
    env.write_config()
    assert "Warning" not in env.run("cron", "--every", "15m").err


# --- 7. cron blocks per config ---------------------------------------------------------------------------



def test_cron_blocks_are_per_config(tmp_path: Path, sim_env: SimEnvFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    store = fake_crontab(tmp_path, monkeypatch)
    store.write_text("MAILTO=me@example.com\n")
    env = sim_env(listings=5, orders=0)
    us = env.config_path
    eu = tmp_path / "eu.toml"
    eu.write_text(us.read_text())
    eu.chmod(0o600)
    assert env.run("cron", "--install").code == 0
    assert _run("--config", str(eu), "cron", "--every", "30m", "--install").code == 0
    both = store.read_text()
    assert both.count("sync-orders") == 2
    assert f"--config {us.resolve()} sync-orders" in both and f"--config {eu.resolve()} sync-orders" in both
    assert both.startswith("MAILTO=me@example.com\n")
    # the same config again: nothing changes
    again = _run("--config", str(eu), "cron", "--every", "30m", "--install")
    assert "already has these lines" in again.err and store.read_text() == both
    # a changed schedule replaces only that config's block
    _run("--config", str(eu), "cron", "--every", "10m", "--install")
    changed = store.read_text()
    assert "*/10 * * * * " in changed and "*/30 * * * *" not in changed and "*/15 * * * *" in changed
    # uninstall removes one block, then says there is none
    gone = _run("--config", str(eu), "cron", "--uninstall")
    assert gone.code == 0 and "Removed" in gone.err
    left = store.read_text()
    assert str(eu.resolve()) not in left and f"--config {us.resolve()} sync-orders" in left
    none = _run("--config", str(eu), "cron", "--uninstall")
    assert "has no lines" in none.err and store.read_text() == left


def test_a_block_from_before_per_config_markers_is_replaced_not_duplicated(tmp_path: Path) -> None:
    config = tmp_path / "a.toml"
    config.write_text("")
    other = tmp_path / "b.toml"
    old = ("0 1 * * * backup\n"
           "# >>> amz2erp (managed by `amz2erp cron --install`; edits here are replaced) >>>\n"
           f"*/15 * * * * /bin/amz2erp --config {config.resolve()} -q sync-orders >> /l 2>&1\n"
           "# <<< amz2erp <<<\n")
    lines = cron.cron_lines(config, tmp_path / "log", timedelta(minutes=15), timedelta(hours=24))
    merged = cron.merge(old, lines, config)
    assert merged.count("sync-orders") == 1 and " -q " not in merged and merged.startswith("0 1 * * * backup\n")
    # an old block of another config stays
    kept = cron.merge(old, cron.cron_lines(other, tmp_path / "log", timedelta(minutes=15), timedelta(hours=24)), other)
    assert kept.count("sync-orders") == 2


# --- 8. tables and plurals ----------------------------------------------------------------------------------


def test_id_columns_are_never_cut_on_80_columns() -> None:
    out = io.StringIO()
    rows = [("SAL-ORD-2026-00065-1", "113-4987480-5193619", "1234.56 USD", "1234.56", "12.34", "✓",
             "a long explanation that has to wrap somewhere because there is no room")]
    with contextlib.redirect_stdout(out):
        Reporter(interactive=False).table("t", ["Sales Order", "Amazon order", "grand total", "OrderTotal",
                                                "MF tax", "match", "note"], rows,
                                          ids=("Sales Order", "Amazon order"))
    text = out.getvalue()
    assert "SAL-ORD-2026-00065-1" in text and "113-4987480-5193619" in text
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize(("n", "word", "many", "expected"), [
    (0, "order", None, "0 orders"), (1, "order", None, "1 order"), (2, "order", None, "2 orders"),
    (1, "entry", "entries", "1 entry"), (3, "entry", "entries", "3 entries")])
def test_plural(n: int, word: str, many: str | None, expected: str) -> None:
    assert plural(n, word, many) == expected


def test_no_count_is_printed_with_a_wrong_plural(tmp_path: Path) -> None:
    with SimEnv(tmp_path, listings=5, orders=0) as env:
        env.setup_erp()
        result = env.run("check")
    assert re.search(r"All \d+ checks passed\.", result.err)
    assert not re.search(r"\b1 (orders|checks|changes|chunks|ERPNext writes)\b", result.err + result.out)


# --- 9. the config template -------------------------------------------------------------------------------


def _template_keys() -> dict[str, list[tuple[str, str, str]]]:
    """Section → (key, line, the line before) for every key line, commented out or not."""
    text = (REPO / "amz2erp" / "templates" / "config.toml").read_text(encoding="utf-8")
    keys: dict[str, list[tuple[str, str, str]]] = {}
    section = ""
    previous = ""
    for line in text.splitlines():
        header = re.match(r"^#?\s*\[([\w.]+)\]", line)
        if header:
            section = header.group(1)
            keys.setdefault(section, [])
        else:
            key = re.match(r'^#?\s*"?([\w:-]+)"?\s*=', line)
            if key:
                keys.setdefault(section, []).append((key.group(1), line, previous))
        previous = line
    return keys


def test_every_settings_field_is_in_the_template_and_explained() -> None:
    keys = _template_keys()
    for section, info in Settings.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for name, field in model.model_fields.items():
            dict_field = field.annotation is not None and getattr(field.annotation, "__origin__", None) is dict
            if dict_field:  # a table of its own: [items.map], [orders.exchange_rates]
                assert f"{section}.{name}" in keys, f"[{section}.{name}] missing from the template"
                continue
            found = [k for k in keys.get(section, []) if k[0] == name]
            assert found, f"[{section}] {name} missing from the template"
            _key, line, before = found[0]
            value_part = line.lstrip("#").split("=", 1)[1]
            explained = "#" in value_part or (before.lstrip().startswith("#") and "=" not in before)
            assert explained, f"[{section}] {name} has no explanation"


def test_template_keys_are_all_real_settings() -> None:
    for section, entries in _template_keys().items():
        if "." in section:
            continue  # free-form tables
        model = Settings.model_fields[section].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for key, _line, _before in entries:
            assert key in model.model_fields, f"[{section}] {key} is not a setting"
