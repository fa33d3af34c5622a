"""Every `amz2erp …` line in the README's sh code blocks runs, against the simulators, with its expected exit code.

How the examples are run:
* Each command line is taken from the README as written (comments after `#` dropped; of a line joined
  with `&&`, the `amz2erp …` part). A new or changed example fails `test_every_readme_example_has_an_expectation`
  until it gets an entry in EXPECTED below.
* They run in README order against one simulator environment whose ERPNext has been set up (the README's
  `amz2erp setup` step), with `--config <that environment's config>` put first; an example that names its
  own config (`--config /etc/amz2erp.toml`) gets that path replaced.
* The simulated "today" is 2026-11-01 with 30 days of orders, so the README's `--after` dates are used as
  they are. Substitutions (SUBSTITUTE): the backfill range of the README (early 2025, no simulated orders)
  becomes the last four weeks, and the example order id becomes an order that exists on the simulator.
  The settlement file of the README is the worked example tests/fixtures/settlements/us_example1_….txt.
* `cron --install` writes to a fake crontab ($AMZ2ERP_CRONTAB), never the user's.
* The demos run as processes (they install their own clock); `demo --keep` is stopped with SIGTERM once
  it serves, which is exit 130 (interrupted).
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import fake_crontab
from tests.simenv import SimEnv

README = Path(__file__).resolve().parent.parent / "README.md"
SETTLEMENT_FILE = Path(__file__).resolve().parent / "fixtures" / "settlements" / "us_example1_12345678901.txt"


@dataclass(frozen=True)
class Expect:
    code: int = 0
    json_out: bool = False  # stdout must be one JSON document
    process: bool = False  # run as a separate process (the demos)
    keep: bool = False  # serves until stopped: stopped with SIGTERM once it printed its config


EXPECTED: dict[str, Expect] = {
    "amz2erp demo": Expect(process=True),
    "amz2erp init --path ./amz2erp.toml": Expect(),
    # global options after the command (`check --json`) are valid: users type them there
    "amz2erp check --json": Expect(json_out=True),
    "amz2erp setup --dry-run": Expect(),
    "amz2erp sync-products --after 2023-01-01 --marketplace US --dry-run": Expect(),
    "amz2erp sync-orders": Expect(),
    "amz2erp sync-orders --after 2026-10-01 --dry-run --json": Expect(json_out=True),
    "amz2erp backfill --from 2025-01-01 --to 2025-03-31 --chunk 7d": Expect(),
    "amz2erp status": Expect(),
    "amz2erp retry": Expect(),
    "amz2erp retry 111-1234567-1234567": Expect(),
    "amz2erp sync-settlements --dry-run --marketplace US": Expect(),
    "amz2erp sync-settlements --file ./settlement-12345678901.txt --dry-run": Expect(),
    "amz2erp status --settlements": Expect(),
    "amz2erp audit --from 2026-01-01 --to 2026-03-31": Expect(),
    "amz2erp audit --from 2026-01-01 --fix --dry-run": Expect(),
    "amz2erp audit --from 2026-01-01 --fix --marketplace US": Expect(),
    "amz2erp --json audit --from 2026-01-01": Expect(json_out=True),
    "amz2erp --config /etc/amz2erp.toml cron --every 15m --products-every 24h --install": Expect(),
    "amz2erp demo --orders 500 --seed 3 --keep": Expect(code=130, process=True, keep=True),
    "amz2erp demo --mode invoice": Expect(process=True),
}


def readme_examples(text: str) -> list[str]:
    """The `amz2erp …` command lines of the README's sh code blocks, in order."""
    out: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            for part in line.split("&&"):
                part = part.strip()
                if (part == "amz2erp" or part.startswith("amz2erp ")) and part not in out:
                    out.append(part)
    return out


EXAMPLES = readme_examples(README.read_text(encoding="utf-8"))


def test_every_readme_example_has_an_expectation() -> None:
    assert EXAMPLES, "no `amz2erp` examples found in the README's sh blocks"
    assert sorted(EXAMPLES) == sorted(EXPECTED), "README examples and EXPECTED differ: update EXPECTED"



@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimEnv]:
    with SimEnv(tmp_path_factory.mktemp("readme"), listings=20, orders=60) as sim_env:
        sim_env.setup_erp()
        yield sim_env


def substitute(env: SimEnv, args: list[str]) -> list[str]:
    """The documented substitutions (module docstring)."""
    now = env.clock.now().date()
    swaps = {
        ("--from", "2025-01-01"): (now - timedelta(days=28)).isoformat(),
        ("--to", "2025-03-31"): (now - timedelta(days=1)).isoformat(),
    }
    out = list(args)
    for i in range(1, len(out)):
        if (out[i - 1], out[i]) in swaps:
            out[i] = swaps[(out[i - 1], out[i])]
        if out[i] == "/etc/amz2erp.toml" and out[i - 1] == "--config":
            out[i] = str(env.config_path)
    if out[:2] == ["amz2erp", "retry"] and len(out) > 2:
        out[2:] = [env.orders[0].amazon_order_id]
    return out


def _run_kept_demo(args: list[str], tmp: Path) -> int:
    err_path = tmp / "demo.err"
    with open(tmp / "demo.out", "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "amz2erp", *args], stdout=out, stderr=err, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if any(line.strip().startswith("config ") for line in err_path.read_text().splitlines()):
                break
            time.sleep(0.5)
        assert proc.poll() is None, f"demo --keep ended by itself: {err_path.read_text()[-2000:]}"
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:  # pragma: no cover - only when the demo hangs
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_example_runs(
    example: str, env: SimEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expect = EXPECTED[example]
    args = substitute(env, shlex.split(example))
    if expect.process:
        if expect.keep:
            code = _run_kept_demo(args[1:], tmp_path)
        else:
            result = subprocess.run([sys.executable, "-m", "amz2erp", *args[1:]], capture_output=True, text=True,
                                    timeout=600)
            code = result.returncode
            assert code == expect.code, result.stderr[-3000:]
        assert code == expect.code
        return
    monkeypatch.chdir(tmp_path)  # `init --path ./amz2erp.toml` writes here
    if "./settlement-12345678901.txt" in args:  # a settlement file the user downloaded: the worked example
        (tmp_path / "settlement-12345678901.txt").write_bytes(SETTLEMENT_FILE.read_bytes())
    fake_crontab(tmp_path, monkeypatch)
    cli_args = args[1:]
    if "--config" in cli_args:
        # env.run puts the environment's --config first; the example's (substituted) one is the same file
        i = cli_args.index("--config")
        del cli_args[i : i + 2]
    result = env.run(*cli_args)
    assert result.code == expect.code, (example, result.out[-2000:], result.err[-2000:])
    assert "Traceback" not in result.err
    if expect.json_out:
        json.loads(result.out)
    if cli_args[0] == "init":
        assert (tmp_path / "amz2erp.toml").exists()
    if "--install" in cli_args:
        assert "sync-orders" in (tmp_path / "crontab.txt").read_text()
