"""Stock of the simulated ERPNext: Bins, Stock Ledger Entries, Stock Entries and the negative-stock rule,
as ERPNext v15 posts them (stock_ledger.py, stock_controller.py, stock_entry.py; confirmed by the v15
recordings).

* Only items with ``is_stock_item`` move stock. Each movement is a Stock Ledger Entry (item, warehouse,
  ``actual_qty``, voucher) and changes the Bin of (item, warehouse): ``actual_qty`` and a moving-average
  ``valuation_rate``.
* Stock Settings ``allow_negative_stock`` is 0 by default: a movement that leaves a warehouse below zero at its
  posting time, or makes a later entry go below zero, fails with NegativeStockError ("<qty> units of Item …
  needed in Warehouse … on <date time> for <voucher> to complete this transaction.", title "Insufficient
  Stock"). ``set_allow_negative_stock(sim, True)`` (or a PUT on Stock Settings) turns the check off.
* Cancelling a voucher marks its entries ``is_cancelled`` and adds the reversing ones, as ERPNext does.
* A Stock Entry of type Material Receipt puts stock in (``t_warehouse``), Material Issue takes it out
  (``s_warehouse``), Material Transfer does both.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from amz2erp_sim.erpnext.errors import FrappeError, error_message, validation
from amz2erp_sim.erpnext.values import cint, flt, hash_name

if TYPE_CHECKING:
    from amz2erp_sim.erpnext.engine import Engine
    from amz2erp_sim.erpnext.server import ErpNextSimulator

STE = "Stock Entry"
STED = "Stock Entry Detail"
SLE = "Stock Ledger Entry"
BIN = "Bin"
SETTINGS = "Stock Settings"
PURPOSES = ["Material Issue", "Material Receipt", "Material Transfer"]

# Field lists generated from the v15 recordings (type-zero defaults; non-zero ones in DEFAULTS).
FIELDS: dict[str, dict[str, Any]] = {
    "Stock Entry": {
        "naming_series": None, "stock_entry_type": None, "purpose": None, "add_to_transit": 0, "company": None,
        "posting_date": None, "posting_time": None, "set_posting_time": 0, "inspection_required": 0,
        "apply_putaway_rule": 0, "from_bom": 0, "use_multi_level_bom": 0, "fg_completed_qty": 0.0,
        "process_loss_percentage": 0.0, "process_loss_qty": 0.0, "last_scanned_warehouse": None,
        "total_outgoing_value": 0.0, "total_incoming_value": 0.0, "value_difference": 0.0,
        "total_additional_costs": 0.0, "is_opening": None, "remarks": None, "per_transferred": 0.0,
        "total_amount": 0.0, "is_return": 0,
    },
    "Stock Entry Detail": {
        "has_item_scanned": 0, "t_warehouse": None, "item_code": None, "item_name": None,
        "is_finished_item": 0, "is_scrap_item": 0, "description": None, "item_group": None, "qty": 0.0,
        "transfer_qty": 0.0, "retain_sample": 0, "uom": None, "stock_uom": None, "conversion_factor": 0.0,
        "sample_quantity": 0, "basic_rate": 0.0, "additional_cost": 0.0, "valuation_rate": 0.0,
        "allow_zero_valuation_rate": 0, "set_basic_rate_manually": 0, "basic_amount": 0.0, "amount": 0.0,
        "use_serial_batch_fields": 0, "expense_account": None, "cost_center": None, "actual_qty": 0.0,
        "transferred_qty": 0.0, "allow_alternative_item": 0,
    },
    SLE: {
        "item_code": None, "warehouse": None, "posting_date": None, "posting_time": None, "voucher_type": None,
        "voucher_no": None, "voucher_detail_no": None, "actual_qty": 0.0, "qty_after_transaction": 0.0,
        "incoming_rate": 0.0, "outgoing_rate": 0.0, "valuation_rate": 0.0, "stock_value": 0.0,
        "stock_value_difference": 0.0, "stock_uom": None, "company": None, "fiscal_year": None,
        "is_cancelled": 0,
    },
    BIN: {
        "item_code": None, "warehouse": None, "actual_qty": 0.0, "reserved_qty": 0.0, "projected_qty": 0.0,
        "valuation_rate": 0.0, "stock_value": 0.0, "stock_uom": None,
    },
    SETTINGS: {"allow_negative_stock": 0, "valuation_method": "FIFO", "default_warehouse": None},
}  # fmt: skip
FIELDS[STED]["s_warehouse"] = None
FIELDS[STE]["amended_from"] = None
DEFAULTS: dict[str, dict[str, Any]] = {
    STE: {"naming_series": "MAT-STE-.YYYY.-", "use_multi_level_bom": 1, "is_opening": "No"},
    STED: {"conversion_factor": 1.0},
}
TABLES: dict[str, dict[str, str | None]] = {STE: {"additional_costs": None, "items": STED}}
LINKS: dict[str, dict[str, str]] = {
    STE: {"company": "Company", "amended_from": STE},
    STED: {"item_code": "Item", "s_warehouse": "Warehouse", "t_warehouse": "Warehouse", "uom": "UOM"},
}
MANDATORY: dict[str, list[str]] = {STE: ["stock_entry_type", "company", "items"], STED: ["item_code", "qty"]}
SELECTS: dict[str, dict[str, list[str]]] = {STE: {"stock_entry_type": PURPOSES}}


def _now_time() -> str:
    return datetime.now().strftime("%H:%M:%S.%f")


def allow_negative_stock(eng: Engine) -> bool:
    settings = eng.store.get(SETTINGS, SETTINGS) or {}
    return bool(cint(settings.get("allow_negative_stock")))


def set_allow_negative_stock(sim: ErpNextSimulator, allowed: bool) -> None:
    """Stock Settings ``allow_negative_stock`` (0 on a fresh site)."""
    with sim.lock, sim.store.transaction():
        ensure_settings(sim.engine)
        settings = sim.store.get(SETTINGS, SETTINGS) or {}
        settings["allow_negative_stock"] = 1 if allowed else 0
        sim.store.update(settings)


def ensure_settings(eng: Engine) -> None:
    if not eng.store.exists(SETTINGS, SETTINGS):
        eng.insert(SETTINGS, {"name": SETTINGS, "allow_negative_stock": 0, "valuation_method": "FIFO"}, raw=True)


def _bin(eng: Engine, item_code: str, warehouse: str) -> dict[str, Any] | None:
    found = eng.store.scan(BIN, {"item_code": item_code, "warehouse": warehouse})
    return found[0] if found else None


def actual_qty(eng: Engine, item_code: str, warehouse: str) -> float:
    return flt((_bin(eng, item_code, warehouse) or {}).get("actual_qty"))


def valuation_rate(eng: Engine, item_code: str, warehouse: str) -> float:
    """The Bin's moving-average rate, else the Item's valuation rate (what ERPNext takes for an empty bin)."""
    b = _bin(eng, item_code, warehouse)
    if b and flt(b.get("valuation_rate")):
        return flt(b["valuation_rate"])
    item = eng.store.get("Item", item_code) or {}
    return flt(item.get("valuation_rate"))


def stock_ledger(sim: ErpNextSimulator, *, item_code: str | None = None, warehouse: str | None = None,
                 live_only: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """The Stock Ledger Entries (direct read for tests), oldest first."""
    with sim.lock:
        rows = sim.store.scan(SLE)
    return [
        r for r in rows
        if (item_code is None or r.get("item_code") == item_code)
        and (warehouse is None or r.get("warehouse") == warehouse)
        and not (live_only and cint(r.get("is_cancelled")))
    ]  # fmt: skip


# --------------------------------------------------------------------------- posting


def _movements(eng: Engine, doc: dict[str, Any], sign: int) -> list[tuple[dict[str, Any], str, float, float]]:
    """(row, warehouse, qty change, incoming rate) of a voucher's stock items."""
    out = []
    for row in doc.get("items") or []:
        item = eng.store.get("Item", str(row.get("item_code"))) or {}
        if not cint(item.get("is_stock_item")):
            continue
        qty = flt(row.get("transfer_qty") or row.get("stock_qty")) or flt(row.get("qty")) * (
            flt(row.get("conversion_factor")) or 1.0
        )
        if doc["doctype"] == STE:
            if row.get("s_warehouse"):
                out.append((row, str(row["s_warehouse"]), -qty * sign, 0.0))
            if row.get("t_warehouse"):
                out.append((row, str(row["t_warehouse"]), qty * sign, flt(row.get("valuation_rate"))))
            continue
        if not row.get("warehouse"):
            raise validation(f"Warehouse required for stock Item {row.get('item_code')}", exc_source=True)
        rate = flt(row.get("incoming_rate")) or valuation_rate(eng, str(row.get("item_code")), str(row["warehouse"]))
        out.append((row, str(row["warehouse"]), -qty * sign, rate))
    return out


def post_voucher(eng: Engine, doc: dict[str, Any], sign: int) -> None:
    """Submit (sign 1): write the voucher's Stock Ledger Entries; cancel (-1): reverse them."""
    if sign < 0:
        _cancel(eng, doc)
        return
    for row, warehouse, change, rate in _movements(eng, doc, sign):
        code = str(row.get("item_code"))
        row["actual_qty"] = actual_qty(eng, code, warehouse)  # the quantity before this voucher
        entry = _new_entry(eng, doc, row, warehouse, change, rate)
        _check_negative(eng, doc, entry)
        eng.store.insert(entry)
        _refresh_bin(eng, code, warehouse, change, rate)


def _new_entry(eng: Engine, doc: dict[str, Any], row: dict[str, Any], warehouse: str, change: float,
               rate: float) -> dict[str, Any]:  # fmt: skip
    entry: dict[str, Any] = {"name": hash_name(), "owner": "Administrator", "modified_by": "Administrator",
                             "docstatus": 1, "idx": 0, "doctype": SLE}  # fmt: skip
    entry.update(FIELDS[SLE])
    ts = eng.now()
    entry.update(
        creation=ts, modified=ts, item_code=row.get("item_code"), warehouse=warehouse,
        posting_date=str(doc.get("posting_date")), posting_time=str(doc.get("posting_time") or "00:00:00"),
        voucher_type=doc["doctype"], voucher_no=doc["name"], voucher_detail_no=row.get("name"),
        actual_qty=flt(change, 3), incoming_rate=rate if change > 0 else 0.0, stock_uom=row.get("stock_uom"),
        company=doc.get("company"), valuation_rate=rate, stock_value_difference=flt(change * rate, 2),
    )  # fmt: skip
    return entry


def _sort_key(e: dict[str, Any]) -> tuple[str, str, str]:
    date, time = str(e.get("posting_date")), str(e.get("posting_time") or "00:00:00")
    hh, _, rest = time.partition(":")
    return date, f"{int(hh or 0):02d}:{rest}", str(e.get("creation"))


def _check_negative(eng: Engine, doc: dict[str, Any], entry: dict[str, Any]) -> None:
    """The balance at the new entry's posting time, and at every later entry, must stay >= 0."""
    if allow_negative_stock(eng):
        return
    live = [e for e in eng.store.scan(SLE, {"item_code": str(entry["item_code"]), "warehouse": str(entry["warehouse"])})
            if not cint(e.get("is_cancelled"))]  # fmt: skip
    ordered = sorted([*live, entry], key=_sort_key)
    balance = 0.0
    reached = False
    for e in ordered:
        balance = flt(balance + flt(e.get("actual_qty")), 3)
        reached = reached or e is entry
        if e is entry:
            entry["qty_after_transaction"] = balance
        if reached and balance < 0:
            voucher = doc if e is entry else (eng.store.get(str(e["voucher_type"]), str(e["voucher_no"])) or {})
            raise negative_stock_error(eng, e, voucher, -balance)


def negative_stock_error(eng: Engine, entry: dict[str, Any], voucher: dict[str, Any], shortage: float) -> FrappeError:
    code, warehouse = str(entry["item_code"]), str(entry["warehouse"])
    item = eng.store.get("Item", code) or {}
    item_label = f"{code}: {item['item_name']}" if item.get("item_name") and item["item_name"] != code else code
    vtype, vno = str(entry["voucher_type"]), str(entry["voucher_no"])
    title = voucher.get("title") or vno
    message = (
        f'<strong>{shortage}</strong> units of <a href="/app/Form/Item/{quote(code)}" style="font-weight: bold;">'
        f"Item {item_label}</a> needed in "
        f'<a href="/app/Form/Warehouse/{quote(warehouse)}" style="font-weight: bold;">Warehouse {warehouse}</a> on '
        f"{entry['posting_date']} {entry['posting_time']} for "
        f'<a href="/app/Form/{vtype}/{vno}" style="font-weight: bold;">{vtype} {title}</a> to complete this '
        "transaction."
    )
    return FrappeError(417, "NegativeStockError", [error_message(message, "Insufficient Stock")],
                       module="erpnext.stock.stock_ledger", exc_source=True)  # fmt: skip


def _refresh_bin(eng: Engine, item_code: str, warehouse: str, change: float, rate: float) -> None:
    b = _bin(eng, item_code, warehouse)
    if b is None:
        b = {"name": hash_name(), "owner": "Administrator", "modified_by": "Administrator", "docstatus": 0,
             "idx": 0, "doctype": BIN, **FIELDS[BIN], "item_code": item_code, "warehouse": warehouse,
             "creation": eng.now()}  # fmt: skip
        eng.store.insert(b)
    old_qty, old_rate = flt(b.get("actual_qty")), flt(b.get("valuation_rate"))
    new_qty = flt(old_qty + change, 3)
    if change > 0 and rate and new_qty > 0:
        b["valuation_rate"] = flt((max(old_qty, 0) * old_rate + change * rate) / (max(old_qty, 0) + change), 9)
    b["actual_qty"] = new_qty
    b["projected_qty"] = flt(new_qty - flt(b.get("reserved_qty")), 3)
    b["stock_value"] = flt(new_qty * flt(b.get("valuation_rate")), 2)
    b["modified"] = eng.now()
    eng.store.update(b)


def _cancel(eng: Engine, doc: dict[str, Any]) -> None:
    for e in eng.store.scan(SLE, {"voucher_no": str(doc["name"])}):
        if e.get("voucher_type") != doc["doctype"] or cint(e.get("is_cancelled")):
            continue
        e["is_cancelled"] = 1
        eng.store.update(e)
        reverse = dict(e, name=hash_name(), actual_qty=-flt(e.get("actual_qty")), creation=eng.now(),
                       stock_value_difference=-flt(e.get("stock_value_difference")))  # fmt: skip
        eng.store.insert(reverse)
        _refresh_bin(eng, str(e["item_code"]), str(e["warehouse"]), -flt(e.get("actual_qty")), 0.0)


# --------------------------------------------------------------------------- Stock Entry


def validate_stock_entry(eng: Engine, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
    doc["company"] = doc.get("company") or eng.company
    company = eng.store.get("Company", str(doc["company"])) or {}
    doc["purpose"] = doc.get("stock_entry_type")
    if not cint(doc.get("set_posting_time")):
        doc["posting_date"], doc["posting_time"] = eng.today(), _now_time()
    doc["posting_date"] = doc.get("posting_date") or eng.today()
    doc["posting_time"] = doc.get("posting_time") or _now_time()
    incoming = outgoing = 0.0
    for idx, row in enumerate(doc.get("items") or [], start=1):
        code = row.get("item_code")
        item = eng.store.get("Item", str(code)) if code else None
        if item is None:
            from amz2erp_sim.erpnext.errors import does_not_exist

            raise does_not_exist("Item", str(code))
        for f in ("item_name", "description", "item_group", "stock_uom"):
            row[f] = row.get(f) or item.get(f)
        row["uom"] = row.get("uom") or item.get("stock_uom")
        row["conversion_factor"] = flt(row.get("conversion_factor")) or 1.0
        row["qty"] = flt(row.get("qty"))
        row["transfer_qty"] = flt(row["qty"] * row["conversion_factor"], 3)
        if doc["purpose"] in ("Material Receipt", "Material Transfer") and not row.get("t_warehouse"):
            raise validation(f"Target warehouse is mandatory for row {idx}", exc_source=True)
        if doc["purpose"] in ("Material Issue", "Material Transfer") and not row.get("s_warehouse"):
            raise validation(f"Source warehouse is mandatory for row {idx}", exc_source=True)
        if doc["purpose"] == "Material Receipt":
            row["s_warehouse"] = None
        if doc["purpose"] == "Material Issue":
            row["t_warehouse"] = None
        if not flt(row.get("basic_rate")) and row.get("s_warehouse"):
            row["basic_rate"] = valuation_rate(eng, str(code), str(row["s_warehouse"]))
        row["basic_rate"] = flt(row.get("basic_rate"), 2)
        row["basic_amount"] = flt(row["transfer_qty"] * row["basic_rate"], 2)
        row["amount"] = row["basic_amount"]
        row["valuation_rate"] = row["basic_rate"]
        row["expense_account"] = row.get("expense_account") or company.get("stock_adjustment_account")
        row["cost_center"] = row.get("cost_center") or company.get("cost_center")
        if row.get("t_warehouse"):
            incoming += row["amount"]
        if row.get("s_warehouse"):
            outgoing += row["amount"]
    doc["total_incoming_value"] = flt(incoming, 2)
    doc["total_outgoing_value"] = flt(outgoing, 2)
    doc["value_difference"] = flt(incoming - outgoing, 2)
    doc["total_amount"] = flt(max(incoming, outgoing), 2)


def on_submit_stock_entry(eng: Engine, doc: dict[str, Any], sign: int) -> None:
    if sign > 0:
        from amz2erp_sim.erpnext import journal as erpnext_journal

        erpnext_journal._check_fiscal_year(eng, doc)
    post_voucher(eng, doc, sign)
