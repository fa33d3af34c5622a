"""`amz2erp demo --mode invoice`: the scripted demo in invoice mode, as a process."""

from __future__ import annotations

import json
import subprocess
import sys


def test_demo_in_invoice_mode_clears_every_invoice() -> None:
    result = subprocess.run([sys.executable, "-m", "amz2erp", "demo", "--orders", "60", "--mode", "invoice", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    # the steps print as they run; the demo's own JSON document comes last
    report = json.loads(result.stdout[result.stdout.rindex("\n{\n") + 1:])
    invoiced = report["invoice_mode"]
    assert invoiced["sales_invoices"] > 0 and invoiced["settlements"]
    assert invoiced["not_cleared"] == []  # every invoice belongs to a settlement that paid it
    for settlement in invoiced["settlements"]:
        assert settlement["receipts"], settlement
        assert settlement["unpaid"] == [], settlement  # outstanding 0
        assert settlement["clearing"] == "0.00", settlement  # the clearing account nets to zero
    assert invoiced["writes_on_rerun"] == 0
    # the bank line of every settlement entry is still Amazon's deposit
    assert report["settlements"] and all(s["match"] for s in report["settlements"])
