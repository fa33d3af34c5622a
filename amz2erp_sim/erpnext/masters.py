"""Loads the master data a fresh ERPNext v15 company has (``masters.json``, seeded when ``seed_masters``).

The data is a file, not code: adding a country, currency or account is an edit to the JSON. The loader turns
each record back into the tuple the seeding code unpacks, in the field order named here.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

_DATA: dict[str, Any] = json.loads(
    resources.files("amz2erp_sim.erpnext").joinpath("masters.json").read_text(encoding="utf-8")
)


def _rows(key: str, *fields: str) -> list[tuple[Any, ...]]:
    return [tuple(row[f] for f in fields) for row in _DATA[key]]


# (name, ISO alpha-2 lower case as ERPNext stores it)
COUNTRIES: list[tuple[str, str]] = _rows("countries", "name", "code")
# (code, symbol, fraction, fraction_units, smallest_currency_fraction_value)
CURRENCIES: list[tuple[str, str, str, int, float]] = _rows(
    "currencies", "code", "symbol", "fraction", "fraction_units", "smallest_currency_fraction_value"
)
# Standard chart of accounts: (account_name, parent account_name or None, is_group, root_type, account_type)
ACCOUNTS: list[tuple[str, str | None, int, str, str]] = _rows(
    "accounts", "account_name", "parent", "is_group", "root_type", "account_type"
)
# (warehouse_name, is_group, parent warehouse_name)
WAREHOUSES: list[tuple[str, int, str | None]] = _rows(
    "warehouses", "warehouse_name", "is_group", "parent"
)
ITEM_GROUPS: list[tuple[str, int, str]] = _rows("item_groups", "name", "is_group", "parent")
CUSTOMER_GROUPS: list[tuple[str, int, str]] = _rows("customer_groups", "name", "is_group", "parent")
UOMS: list[tuple[str, int]] = _rows("uoms", "name", "must_be_whole_number")
