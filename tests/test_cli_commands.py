"""check, setup, the run lock and the demo, through the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from amz2erp.state import RunLock
from tests.conftest import SimEnvFactory


def test_check_passes_on_a_good_config_after_setup(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=0)
    before = env.run("check")
    assert before.code == 2
    assert "✗ custom fields" in before.out and "run `amz2erp setup`" in before.out
    assert env.run("setup").code == 0
    after = env.run("--json", "check")
    assert after.code == 0, after.out
    data = json.loads(after.out)
    assert data["ok"] is True and all(c["ok"] for c in data["checks"])


def test_check_reports_each_problem_precisely(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=0)
    env.setup_erp()
    env.erp.insert_doc("Company", {"company_name": "Other Co", "abbr": "OC", "default_currency": "USD"})
    env.erp.insert_doc("Warehouse", {"warehouse_name": "Elsewhere", "name": "Elsewhere - OC",
                                     "company": "Other Co", "is_group": 0})
    text = env.config_path.read_text()
    text = text.replace('warehouse = "Stores - ATC"', 'warehouse = "Elsewhere - OC"')
    text = text.replace('fba_warehouse = "Finished Goods - ATC"',
                        'fba_warehouse = "Finished Goods - ATC"\nprice_list = "No Such List"')
    env.config_path.write_text(text)
    result = env.run("--json", "check")
    assert result.code == 2
    failed = {c["name"]: c for c in json.loads(result.out)["checks"] if not c["ok"]}
    assert "'Elsewhere - OC'" in failed["warehouse"]["detail"] and "Other Co" in failed["warehouse"]["detail"]
    assert "No Such List" in failed["price list"]["detail"]
    assert failed["warehouse"]["fix"] and failed["price list"]["fix"]

    env.write_config(api_secret="wrong-secret-value")
    bad_token = env.run("--json", "check")
    assert bad_token.code != 0
    checks = json.loads(bad_token.out)["checks"]
    assert any(not c["ok"] and "credentials" in c["name"] for c in checks)
    assert "wrong-secret-value" not in bad_token.out + bad_token.err


def test_setup_twice_has_nothing_to_do(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=0)
    plan = env.run("--json", "setup", "--dry-run")
    assert plan.code == 0 and json.loads(plan.out)["applied"] is False
    assert env.erp.count("Custom Field") == 0
    assert env.run("setup").code == 0
    second = env.run("--json", "setup")
    assert second.code == 0
    assert json.loads(second.out)["actions"] == []
    assert "Nothing to do" in env.run("setup").out


def test_second_concurrent_run_exits_75(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=10)
    env.setup_erp()
    with RunLock(env.state_path):
        result = env.run("sync-orders")
    assert result.code == 75
    assert "another amz2erp run holds the lock" in result.err
    assert env.run("sync-orders").code == 0


def test_demo_runs_end_to_end_as_a_process() -> None:
    result = subprocess.run([sys.executable, "-m", "amz2erp", "demo", "--orders", "40"], capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "What landed in ERPNext" in result.stdout
    assert "Second run with no Amazon changes: 0 ERPNext writes." in result.stdout
    assert "Cancelled on Amazon → cancelled in ERPNext" in result.stdout
    assert "✗" not in result.stdout.split("What landed in ERPNext")[1]
    settlements = result.stdout.split("Settlements: Amazon's deposit next to")[1]
    assert "✓" in settlements  # each closed settlement's deposit = its Journal Entry's bank line
    assert "Traceback" not in result.stderr
    # on 80 columns (a pipe) the ids a user looks up are whole in every table row, never cut or wrapped
    rows = [line for line in result.stdout.split("Sales Orders next to Amazon")[1].splitlines() if "SAL-ORD" in line]
    assert rows and all(re.search(r"│ SAL-ORD-\d{4}-\d{5}(-\d+)? +│ \d{3}-\d{7}-\d{7} +│", line) for line in rows), rows
    assert max(len(line) for line in result.stdout.splitlines() if line[:1] in "┏┃┡│└") <= 80
    assert not re.search(r"\b1 (orders|Amazon orders|ERPNext writes)\b", result.stdout + result.stderr)
