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
from datetime import timedelta
from pathlib import Path

from amz2erp.errors import ConfigError, UsageError

BEGIN = "# >>> amz2erp (managed by `amz2erp cron --install`; edits here are replaced) >>>"
END = "# <<< amz2erp <<<"


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
    base = f"{exe} --config {shlex.quote(str(config_path.resolve()))} -q"
    log = shlex.quote(str(log_path.resolve()))
    return [
        BEGIN,
        f"{schedule(every)} {base} sync-orders >> {log} 2>&1",
        f"{schedule(products_every, minute_offset=7)} {base} sync-products >> {log} 2>&1",
        END,
    ]


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


def merge(existing: str, lines: list[str]) -> str:
    """Replace our managed block (or append it), leaving every other line untouched."""
    out: list[str] = []
    inside = False
    for line in existing.splitlines():
        if line.strip() == BEGIN:
            inside = True
            continue
        if line.strip() == END:
            inside = False
            continue
        if not inside:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    if out:
        out.append("")
    out.extend(lines)
    return "\n".join(out) + "\n"


def install(lines: list[str]) -> bool:
    """Install the block; returns False when the crontab already had exactly these lines."""
    current = read_crontab()
    wanted = merge(current, lines)
    if wanted == current:
        return False
    result = subprocess.run([_crontab_cmd(), "-"], input=wanted, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise ConfigError(f"`crontab -` failed: {result.stderr.strip()}")
    return True
