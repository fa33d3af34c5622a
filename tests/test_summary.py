"""The --json summary of the sync commands: one typed `RunSummary`, every key always present, and the keys are
the ones the README's Commands section lists."""

from __future__ import annotations

import re
from pathlib import Path

from amz2erp.cli import RunSummary
from amz2erp.engine.plan import Action, PlannedWrite

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _documented_keys() -> set[str]:
    match = re.search(r"With `--json`, every sync command.*?\n\n", README, re.S)
    assert match, "README's Commands section no longer describes the --json summary"
    text = re.sub(r"\(with `--dry-run`.*?\)", "", match.group(0), flags=re.S)  # the keys of one plan entry
    text = re.sub(r"\(Sales Orders\s+cancelled.*?\)", "", text, flags=re.S)  # the keys of one amendment
    return set(re.findall(r"`([a-z_]+)`", text)) - {"retry", "backfill"}


def test_every_sync_command_gets_the_same_documented_keys() -> None:
    quiet = RunSummary(0, {"orders created": 2}, 0).to_json()
    assert set(quiet) == _documented_keys()
    assert quiet["ok"] is True and quiet["error"] is None and quiet["plans"] is None and quiet["amended"] == []


def test_a_failed_dry_run_carries_its_error_and_plans() -> None:
    plan = PlannedWrite(Action.SKIP, amazon_order_id="111-1234567-1234567", reason="Pending")
    data = RunSummary(2, {}, 1, amended=[("111-1234567-1234567", "SO-1", "SO-1-1")], plans=[plan]).to_json()
    assert data["ok"] is False and data["error"] == "2 records failed (`amz2erp status` lists them)"
    assert data["plans"] == [{"action": "skip", "amazon_order_id": "111-1234567-1234567", "reason": "Pending"}]
    assert data["amended"] == [{"amazon_order_id": "111-1234567-1234567", "cancelled": "SO-1", "amended": "SO-1-1"}]
