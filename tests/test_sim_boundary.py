"""The simulators sit beside the product: a sync never loads them, and the wheel still ships them for the demo."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from setuptools import find_packages

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter, so nothing this test session imported can hide an import.
_PROBE = textwrap.dedent(
    """
    import importlib, inspect, pkgutil, sys
    import click
    import amz2erp
    from amz2erp.cli import cli

    command = cli.get_command(click.Context(cli), "sync-orders")
    assert command is not None and command.callback is not None
    # the command imports its engine inside the function: import exactly what its body names
    body = inspect.unwrap(command.callback).__code__
    lazy = sorted({n for n in body.co_names if n.startswith("amz2erp.")} | {
        c for c in body.co_consts if isinstance(c, str) and c.startswith("amz2erp.")})
    for name in lazy:
        importlib.import_module(name)
    loaded_by_sync = sorted(m for m in sys.modules if m.split(".")[0] == "amz2erp_sim")
    # every product module, the demo included: the demo may load the simulators only when it runs
    for info in pkgutil.walk_packages(amz2erp.__path__, "amz2erp."):
        if info.name != "amz2erp.__main__":  # importing it runs the CLI
            importlib.import_module(info.name)
    loaded_by_any = sorted(m for m in sys.modules if m.split(".")[0] == "amz2erp_sim")
    print(len(lazy), loaded_by_sync, loaded_by_any)
    """
)


def test_sync_orders_import_path_never_loads_the_simulators() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    lazy_count, by_sync, by_any = out.stdout.strip().split(" ", 2)
    assert int(lazy_count) >= 1  # the probe really found the command's lazy imports
    assert by_sync == "[]"
    assert by_any == "[]"


def test_the_wheel_ships_the_simulators_for_the_demo() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = set(find_packages(str(REPO), include=include))
    assert {"amz2erp", "amz2erp_sim", "amz2erp_sim.spapi", "amz2erp_sim.erpnext"} <= packages
    assert not any(p.startswith("tests") or p.startswith("bench") for p in packages)
    # the ERPNext simulator seeds its masters from a data file: it must be declared package data
    data = config["tool"]["setuptools"]["package-data"]["amz2erp_sim"]
    assert "erpnext/*.json" in data and (REPO / "amz2erp_sim" / "erpnext" / "masters.json").is_file()
