"""Shared helpers for the reliability tests (issue 8): waiting on simulator traffic, checking that ERPNext and
the state ledger hold every Amazon record exactly once, and the figures printed at the end of the run."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from amz2erp.state import StateStore
from amz2erp_sim.datagen import marketplace
from tests.simenv import SimEnv
from tests.test_e2e_orders import importable, live

#: Figures for the closing summary (printed by the terminal-summary hook in conftest.py).
FIGURES: Counter[str] = Counter()
TIMINGS: dict[str, float] = {}


class RequestWatch:
    """Counts the requests an ERPNext simulator has answered and lets a test await a count (no polling
    sleeps): the simulator's request log is wrapped so that each new record notifies waiters."""

    def __init__(self, env: SimEnv) -> None:
        self.cond = threading.Condition()
        self.erp = env.erp

        def _notify(record: Any) -> None:
            with self.cond:
                self.cond.notify_all()

        env.erp.request_listeners.append(_notify)

    @property
    def count(self) -> int:
        return len(self.erp.request_log)

    def wait_for(self, target: int, timeout: float, stop: Callable[[], bool] = lambda: False) -> bool:
        """Until ``target`` requests were answered (True), ``stop()`` is true or ``timeout`` ran out (False)."""
        return self.wait_until(lambda: self.count >= target, timeout, stop)

    def wait_until(self, reached: Callable[[], bool], timeout: float, stop: Callable[[], bool] = lambda: False) -> bool:
        """Until ``reached()`` (True), ``stop()`` is true or ``timeout`` ran out (False)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not reached():
                if stop():
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                # a short wake-up so a process that exits without further requests is noticed
                self.cond.wait(min(left, 0.05))
        return True


def price_list_for(currency: str) -> str:
    return "Standard Selling" if currency == "USD" else f"Standard Selling {currency}"


def duplicates(env: SimEnv) -> list[str]:
    """Every Amazon record that ERPNext holds more than once (orders, items, prices, customers, addresses)."""
    found: list[str] = []
    for amazon_id, sos in env.sales_orders_by_amazon_id().items():
        if len(live(sos)) > 1:
            found.append(f"Sales Order {amazon_id} x{len(live(sos))}")
    for doctype, key in (("Item", ("item_code",)), ("Item Price", ("item_code", "price_list")),
                         ("Customer", ("amazon_customer_key",)),
                         ("Address", ("address_title", "address_type", "address_line1", "address_line2", "city",
                                      "pincode", "country"))):
        seen = Counter(tuple(str(d.get(k)) for k in key) for d in env.erp.docs(doctype))
        found.extend(f"{doctype} {k} x{n}" for k, n in seen.items() if n > 1 and k != ("None",))
    return found


def lost_orders(env: SimEnv) -> list[str]:
    by_id = env.sales_orders_by_amazon_id()
    return [o.amazon_order_id for o in env.spapi.orders if importable(o) and not live(by_id.get(o.amazon_order_id, []))]


def assert_products_landed_exactly_once(env: SimEnv) -> None:
    items: dict[str, list[dict[str, Any]]] = {}
    for d in env.erp.docs("Item"):
        items.setdefault(d["item_code"], []).append(d)
    prices: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in env.erp.docs("Item Price"):
        prices.setdefault((d["item_code"], d["price_list"]), []).append(d)
    for listing in env.spapi.listings:
        if listing.status != "Active":
            continue
        assert len(items.get(listing.sku, [])) == 1, (listing.sku, items.get(listing.sku))
        assert items[listing.sku][0]["amazon_asin"] == listing.asin
        rows = prices.get((listing.sku, price_list_for(listing.currency)), [])
        assert len(rows) == 1, (listing.sku, listing.currency, rows)
        assert Decimal(str(rows[0]["price_list_rate"])) == listing.price, (listing.sku, rows[0])
        assert rows[0]["currency"] == marketplace(listing.marketplace_id).currency


def ledger_disagreements(env: SimEnv, *, products: bool = True) -> list[str]:
    """Where the state ledger and ERPNext disagree: every imported order must be ``done`` with the name of its
    one live Sales Order, every active listing ``done``, every ``done`` customer/address/item must exist, and
    nothing may be left ``writing`` (an unresolved intent) or ``failed``."""
    problems: list[str] = []
    by_id = env.sales_orders_by_amazon_id()
    with StateStore(env.state_path) as state:
        for status in ("writing", "failed"):
            problems.extend(f"{e.kind} {e.key} left {status} ({e.last_error})" for e in state.entries(status=status))
        for order in env.spapi.orders:
            entry = state.get("order", order.amazon_order_id)
            if not importable(order):
                continue
            sos = live(by_id.get(order.amazon_order_id, []))
            if entry is None or entry.status != "done":
                problems.append(f"order {order.amazon_order_id} is {entry.status if entry else 'missing'} in the "
                                "ledger")
            elif not sos or entry.erp_name != sos[0]["name"]:
                problems.append(f"order {order.amazon_order_id}: ledger says {entry.erp_name}, ERPNext has "
                                f"{[so['name'] for so in sos]}")
        for doctype, kind, field in (("Customer", "customer", "name"), ("Address", "address", "name"),
                                     ("Item", "item", "item_code")):
            names = {d[field] for d in env.erp.docs(doctype)}
            problems.extend(f"{kind} {e.key}: ledger names {e.erp_name}, which ERPNext lacks"
                            for e in state.entries(kind, "done") if e.erp_name not in names)
        if products:
            for listing in env.spapi.listings:
                if listing.status != "Active":
                    continue
                key = f"{marketplace(listing.marketplace_id).code}|{listing.sku}"
                entry = state.get("listing", key)
                if entry is None or entry.status != "done" or entry.erp_name != listing.sku:
                    problems.append(f"listing {key}: {entry}")
    return problems
