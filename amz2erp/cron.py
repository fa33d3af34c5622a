"""Crontab lines for unattended runs, and an idempotent installer.

The lines call the installed executable with the absolute config path and append to a log file. Overlap is
impossible: a run that finds the lock held exits 75 at once, and the next tick tries again.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from amz2erp.config import SECRET_ENV
from amz2erp.errors import ConfigError, UsageError

# One managed block per config file, so a second config (another region) gets its own lines. The markers name
# the config's absolute path; a block written before they did (no path) belongs to the config its lines name.
_BEGIN = "# >>> amz2erp"
_BEGIN_TAIL = "(managed by `amz2erp cron --install`; edits here are replaced) >>>"
_END = "# <<< amz2erp"


def begin_marker(config_path: Path) -> str:
    return f"{_BEGIN} {config_path.resolve()} {_BEGIN_TAIL}"


def end_marker(config_path: Path) -> str:
    return f"{_END} {config_path.resolve()} <<<"


def schedule(every: timedelta, *, minute_offset: int = 0) -> str:
    """A cron schedule for a period: minutes dividing an hour, hours dividing a day, or one day."""
    seconds = int(every.total_seconds())
    if seconds % 60 or seconds <= 0:
        raise UsageError(f"cannot schedule every {every}: use whole minutes")
    minutes = seconds // 60
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0:
        hours = minutes // 60
        if hours < 24 and 24 % hours == 0:
            return f"{minute_offset} * * * *" if hours == 1 else f"{minute_offset} */{hours} * * *"
        if hours == 24:
            return f"{minute_offset} 3 * * *"
    raise UsageError(f"cannot schedule every {every}: use a divisor of an hour (5m, 15m, 30m), "
                     "of a day (1h, 2h, 6h, 12h) or 24h")


def executable() -> list[str]:
    found = shutil.which("amz2erp")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "amz2erp"]


def cron_lines(config_path: Path, log_path: Path, every: timedelta, products_every: timedelta) -> list[str]:
    exe = " ".join(shlex.quote(p) for p in executable())
    # No -q: the log file gets the plain progress lines and the summary of every run.
    base = f"{exe} --config {shlex.quote(str(config_path.resolve()))}"
    log = shlex.quote(str(log_path.resolve()))
    return [
        begin_marker(config_path),
        f"{schedule(every)} {base} sync-orders >> {log} 2>&1",
        f"{schedule(products_every, minute_offset=7)} {base} sync-products >> {log} 2>&1",
        # settlements close every two weeks and their reports appear hours later: once a day is enough
        f"37 6 * * * {base} sync-settlements >> {log} 2>&1",
        end_marker(config_path),
    ]


def read_toml(path: Path) -> dict[str, Any]:
    from amz2erp import config

    return dict(config.tomllib.loads(path.read_text(encoding="utf-8")))


def env_only_secrets(file_data: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """The environment variables a run takes credentials from that are not in the config file: cron starts
    jobs with an almost empty environment, so those runs would fail there."""
    missing = []
    for (section, key), var in SECRET_ENV.items():
        in_file = isinstance(file_data.get(section), dict) and bool(file_data[section].get(key))
        if environ.get(var) and not in_file:
            missing.append(var)
    return missing


def env_warning(variables: list[str]) -> str:
    return (f"{', '.join(variables)} {'is' if len(variables) == 1 else 'are'} set in this shell but not in the "
            "config file, and cron does not pass your shell's environment: these lines would fail. Put the "
            "values in the config file (it is mode 0600), or add NAME=value lines above the amz2erp block "
            "with `crontab -e` (cron sets them for every job below).")


def _crontab_cmd() -> str:
    cmd = os.environ.get("AMZ2ERP_CRONTAB") or shutil.which("crontab")
    if not cmd:
        raise ConfigError("no `crontab` command on this machine; install cron, or use the systemd timer in the README")
    return cmd


def read_crontab() -> str:
    result = subprocess.run([_crontab_cmd(), "-l"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        if "no crontab" in result.stderr.lower():
            return ""
        raise ConfigError(f"`crontab -l` failed: {result.stderr.strip()}")
    return result.stdout


def _block_owner(begin_line: str) -> str | None:
    """The config path a BEGIN marker names ('' for a marker from before per-config blocks), or None."""
    line = begin_line.strip()
    if not (line.startswith(_BEGIN + " ") and line.endswith(_BEGIN_TAIL)):
        return None
    return line[len(_BEGIN) + 1: -len(_BEGIN_TAIL)].strip()


def _is_end(line: str) -> bool:
    return line.strip().startswith(_END) and line.strip().endswith("<<<")


def remove_block(existing: str, config_path: Path) -> tuple[str, bool]:
    """The crontab without this config's block (every other line, other configs' blocks included, kept), and
    whether there was one."""
    ours = str(config_path.resolve())
    config_arg = f"--config {shlex.quote(ours)} "
    out: list[str] = []
    block: list[str] | None = None
    owner = ""
    found_ours = False
    for line in existing.splitlines():
        if block is None:
            found = _block_owner(line)
            if found is None:
                out.append(line)
            else:
                block, owner = [line], found
            continue
        block.append(line)
        if _is_end(line):
            mine = owner == ours or (owner == "" and any(config_arg in b for b in block))
            found_ours = found_ours or mine
            if not mine:
                out.extend(block)
            block = None
    if block is not None:  # a BEGIN without END: keep what the user has rather than guess
        out.extend(block)
    while out and not out[-1].strip():
        out.pop()
    return ("\n".join(out) + "\n" if out else ""), found_ours


def merge(existing: str, lines: list[str], config_path: Path) -> str:
    """Replace this config's managed block (or append it), leaving every other line untouched."""
    kept, _ = remove_block(existing, config_path)
    return kept + ("\n" if kept else "") + "\n".join(lines) + "\n"


def _write_crontab(text: str) -> None:
    result = subprocess.run([_crontab_cmd(), "-"], input=text, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise ConfigError(f"`crontab -` failed: {result.stderr.strip()}")


def install(lines: list[str], config_path: Path) -> bool:
    """Install the block; returns False when the crontab already had exactly these lines."""
    current = read_crontab()
    wanted = merge(current, lines, config_path)
    if wanted == current:
        return False
    _write_crontab(wanted)
    return True


def uninstall(config_path: Path) -> bool:
    """Remove this config's block; returns False when there was none."""
    current = read_crontab()
    wanted, found = remove_block(current, config_path)
    if not found:
        return False
    _write_crontab(wanted)
    return True
