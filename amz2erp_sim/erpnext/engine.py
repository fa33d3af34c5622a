"""The ERPNext document engine the simulator's server calls: its rules are layered in ``documents`` →
``naming`` → ``validation`` → ``sales_order`` → ``lifecycle`` (doctype metadata in ``meta``)."""

from __future__ import annotations

from amz2erp_sim.erpnext.lifecycle import Lifecycle


class Engine(Lifecycle):
    """One engine per simulated site; every method runs under the simulator's lock in a store transaction."""
