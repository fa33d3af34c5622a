"""Journal Entry and its GL effect in the ERPNext simulator, as ERPNext v15 validates and posts them.

Rules (journal_entry.py / general_ledger.py of ERPNext 15, confirmed by the v15 recordings):

* each row's ``account_type`` and ``account_currency`` come from its Account, ``exchange_rate`` is 1 for
  company-currency accounts, and ``debit``/``credit`` are recomputed from ``*_in_account_currency`` ×
  rate: a row that sends only ``debit`` becomes zero and fails "Both Debit and Credit values cannot be zero";
* a Receivable/Payable account needs ``party_type`` and ``party``; other accounts refuse a party;
* an account in another currency needs ``multi_currency``; its row keeps a given ``exchange_rate`` other than
  0 or 1, else takes the latest Currency Exchange on or before ``posting_date``, else silently 1;
* submitting checks "Total Debit must be equal to Total Credit" (a draft may be unbalanced), then
  ``cheque_no``/``cheque_date`` for a Bank Entry, then an active Fiscal Year for ``posting_date``, then, per GL
  row, that the account is a ledger, belongs to the company and is enabled;
* negative amounts are accepted (ERPNext flips them when it posts the GL Entry);
* GL Entries are merged per account/party/cost center; cancelling marks them ``is_cancelled`` and adds the
  reversing entries; a cancelled entry can only be deleted with Accounts Settings
  ``delete_linked_ledger_entries`` (``set_delete_linked_ledger_entries``), which deletes its GL Entries.

``account_balances(sim)`` reads the ledger directly (Σ debit − Σ credit of live GL Entries per account).
"""

from __future__ import annotations

import random
import string
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from amz2erp_sim.erpnext.errors import FrappeError, error_message, link_error, plain_message
from amz2erp_sim.erpnext.errors import validation as _validation

if TYPE_CHECKING:
    from amz2erp_sim.erpnext.engine import Engine
    from amz2erp_sim.erpnext.server import ErpNextSimulator

JE = "Journal Entry"
JEA = "Journal Entry Account"
GLE = "GL Entry"
ACCOUNTING_PERIOD = "Accounting Period"
CLOSED_DOCUMENT = "Closed Document"
_SETTING = "accounts_settings.delete_linked_ledger_entries"

FIELDS: dict[str, dict[str, Any]] = {
    JE: {
        "is_system_generated": 0, "title": None, "voucher_type": "Journal Entry",
        "naming_series": "ACC-JV-.YYYY.-", "finance_book": None, "process_deferred_accounting": None,
        "reversal_of": None, "tax_withholding_category": None, "from_template": None, "company": None,
        "posting_date": None, "apply_tds": 0, "cheque_no": None, "cheque_date": None, "user_remark": None,
        "total_debit": 0.0, "total_credit": 0.0, "difference": 0.0, "multi_currency": 0,
        "total_amount_currency": None, "total_amount": 0.0, "total_amount_in_words": None,
        "clearance_date": None, "remark": None, "paid_loan": None, "inter_company_journal_entry_reference": None,
        "bill_no": None, "bill_date": None, "due_date": None, "write_off_based_on": "Accounts Receivable",
        "write_off_amount": 0.0, "pay_to_recd_from": None, "letter_head": None, "select_print_heading": None,
        "mode_of_payment": None, "payment_order": None, "party_not_required": 0, "is_opening": "No",
        "stock_entry": None, "auto_repeat": None, "amended_from": None,
    },
    JEA: {
        "account": None, "account_type": None, "bank_account": None, "party_type": None, "party": None,
        "cost_center": None, "project": None, "account_currency": None, "exchange_rate": 0.0,
        "debit_in_account_currency": 0.0, "debit": 0.0, "credit_in_account_currency": 0.0, "credit": 0.0,
        "reference_type": None, "reference_name": None, "reference_due_date": None, "reference_detail_no": None,
        "advance_voucher_type": None, "advance_voucher_no": None, "is_tax_withholding_account": 0,
        "is_advance": "No", "user_remark": None, "against_account": None,
    },
    GLE: {
        "posting_date": None, "transaction_date": None, "fiscal_year": None, "account": None,
        "account_currency": None, "against": None, "party_type": None, "party": None, "voucher_type": None,
        "voucher_no": None, "voucher_detail_no": None, "against_voucher_type": None, "against_voucher": None,
        "cost_center": None, "project": None, "debit": 0.0, "credit": 0.0, "debit_in_account_currency": 0.0,
        "credit_in_account_currency": 0.0, "is_opening": "No", "is_advance": "No", "company": None,
        "remarks": None, "is_cancelled": 0,
    },
    ACCOUNTING_PERIOD: {"period_name": None, "start_date": None, "end_date": None, "company": None, "disabled": 0},
    CLOSED_DOCUMENT: {"document_type": None, "closed": 0},
}  # fmt: skip
#: fields other doctypes need for Journal Entry references and the recordings' lists
EXTRA_FIELDS: dict[str, dict[str, Any]] = {"Sales Invoice": {"return_against": None, "debit_to": None}}
TABLES: dict[str, dict[str, str | None]] = {JE: {"accounts": JEA}, ACCOUNTING_PERIOD: {"closed_documents": CLOSED_DOCUMENT}}
MANDATORY: dict[str, list[str]] = {
    JE: ["voucher_type", "posting_date", "company", "accounts"],
    JEA: ["account"],
}
LINKS: dict[str, dict[str, str]] = {
    JE: {"company": "Company", "amended_from": JE},
    JEA: {"account": "Account"},
}
VOUCHER_TYPES = [
    "Journal Entry", "Inter Company Journal Entry", "Bank Entry", "Cash Entry", "Credit Card Entry",
    "Debit Note", "Credit Note", "Contra Entry", "Excise Entry", "Write Off Entry", "Opening Entry",
    "Depreciation Entry", "Asset Disposal", "Periodic Accounting Entry", "Exchange Rate Revaluation",
    "Exchange Gain Or Loss", "Deferred Revenue", "Deferred Expense",
]  # fmt: skip
SELECTS: dict[str, dict[str, list[str]]] = {JE: {"voucher_type": VOUCHER_TYPES}}
LABELS = {"posting_date": "Posting Date", "voucher_type": "Entry Type", "accounts": "Accounting Entries"}


def validation(message: str) -> FrappeError:
    """An error raised by ERPNext's own code (the answer names the app)."""
    return _validation(message, exc_source=True)


def _flt(value: Any, precision: int | None = None) -> float:
    try:
        v = float(value or 0)
    except (TypeError, ValueError):
        return 0.0
    return round(v, precision) if precision is not None else v


def _hash() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=10))


def _us_date(value: Any) -> str:
    d = date.fromisoformat(str(value)[:10])
    return d.strftime("%m-%d-%Y")


# --------------------------------------------------------------------------- validate (insert, save, submit)


def validate(eng: Engine, doc: dict[str, Any]) -> None:
    company = eng.store.get("Company", str(doc.get("company"))) if doc.get("company") else None
    company_currency = str((company or {}).get("default_currency") or eng.currency)
    rows = doc.get("accounts") or []
    for row in rows:
        acc = eng.store.get("Account", str(row.get("account"))) if row.get("account") else None
        if acc is None:  # Frappe checks mandatory fields and links before the controller validates
            if row.get("account"):
                raise link_error(f"Row #{rows.index(row) + 1}: Account", row.get("account"))
            continue
        row["account_type"] = acc.get("account_type") or ""
        row["account_currency"] = acc.get("account_currency") or company_currency
        if not row.get("cost_center"):
            row["cost_center"] = (company or {}).get("cost_center") or None
        if row["account_currency"] == company_currency:
            row["exchange_rate"] = 1.0
        elif not _flt(doc.get("multi_currency")):
            raise validation("Please check Multi Currency option to allow accounts with other currency")
        elif _flt(row.get("exchange_rate")) in (0.0, 1.0):
            # ERPNext looks the rate up and silently takes 1 when no Currency Exchange exists
            found = eng._exchange_rate(
                row["account_currency"], company_currency, str(doc.get("posting_date"))
            )
            row["exchange_rate"] = found or 1.0
        idx = rows.index(row) + 1
        if row["account_type"] in ("Receivable", "Payable"):
            if not row.get("party_type") or not row.get("party"):
                raise validation(
                    f"Row {idx}: Party Type and Party is required for Receivable / Payable account {row['account']}"
                )
        elif row.get("party"):
            raise validation("Party Type and Party can only be set for Receivable / Payable account")
        rate = _flt(row.get("exchange_rate"))
        for side in ("debit", "credit"):
            row[f"{side}_in_account_currency"] = _flt(row.get(f"{side}_in_account_currency"), 2)
            row[side] = _flt(row[f"{side}_in_account_currency"] * rate, 2)
        if not row["debit"] and not row["credit"]:
            raise validation(f"Row {idx}: Both Debit and Credit values cannot be zero")
        if row["debit"] and row["credit"]:
            raise validation("You cannot credit and debit same account at the same time")
    total_debit = total_credit = 0.0
    for row in rows:
        total_debit += _flt(row.get("debit"))
        total_credit += _flt(row.get("credit"))
    doc["total_debit"], doc["total_credit"] = total_debit, total_credit
    doc["difference"] = _flt(total_debit - total_credit, 2)
    _set_against(doc)
    _set_print_fields(eng, doc, company_currency)
    doc["title"] = doc.get("pay_to_recd_from") or (rows[0].get("account") if rows else None)
    doc["remark"] = _remark(eng, doc, company_currency)
    if int(_flt(doc.get("docstatus"))) == 1 and doc["difference"]:
        raise validation(f"Total Debit must be equal to Total Credit. The difference is {doc['difference']}")


def _remark(eng: Engine, doc: dict[str, Any], company_currency: str) -> str:
    remark = []
    if doc.get("user_remark"):
        remark.append(f"Note: {doc['user_remark']}")
    if doc.get("cheque_no"):
        if not doc.get("cheque_date"):
            raise FrappeError(417, "MandatoryError", [error_message("Please enter Reference date")])
        remark.append(f"Reference #{doc['cheque_no']} dated {_us_date(doc['cheque_date'])}")
    currency = eng.store.get("Currency", company_currency) or {}
    symbol = currency.get("symbol") or company_currency
    for row in doc.get("accounts") or []:
        if row.get("reference_type") in ("Sales Invoice", "Sales Order") and _flt(row.get("credit")):
            money = f"{symbol} {_flt(row['credit']):,.2f}"
            remark.append(f"{money} against {row['reference_type']} {row.get('reference_name')}")
    return "\n".join(remark) or "No Remarks"


def _set_against(doc: dict[str, Any]) -> None:
    rows = doc.get("accounts") or []
    if int(_flt(doc.get("docstatus"))) != 0:  # ERPNext fills against_account on drafts only
        for row in rows:
            row["against_account"] = None
        return
    debited = list(
        dict.fromkeys(str(r.get("party") or r["account"]) for r in rows if _flt(r.get("debit")) > 0)
    )
    credited = list(
        dict.fromkeys(str(r.get("party") or r["account"]) for r in rows if _flt(r.get("credit")) > 0)
    )
    for row in rows:
        if _flt(row.get("debit")) > 0:
            row["against_account"] = ", ".join(credited)
        elif _flt(row.get("credit")) > 0:
            row["against_account"] = ", ".join(debited)


def _set_print_fields(eng: Engine, doc: dict[str, Any], company_currency: str) -> None:
    from amz2erp_sim.erpnext.values import money_in_words

    bank = party_amount = 0.0
    bank_currency = party_currency = party = None
    for row in doc.get("accounts") or []:
        amount = _flt(row.get("debit_in_account_currency")) or _flt(row.get("credit_in_account_currency"))
        if row.get("party_type") in ("Customer", "Supplier") and row.get("party"):
            party = party or row["party"]
            if row["party"] == party:
                party_amount += amount
                party_currency = row.get("account_currency")
        elif row.get("account_type") in ("Bank", "Cash"):
            bank += amount
            bank_currency = row.get("account_currency")
    total, currency = 0.0, None
    if party:
        doc["pay_to_recd_from"] = party
        total, currency = (bank, bank_currency) if bank else (party_amount, party_currency)
    doc["total_amount"] = total
    doc["total_amount_currency"] = currency
    doc["total_amount_in_words"] = money_in_words(total, str(currency or company_currency))


# --------------------------------------------------------------------------- submit / cancel / delete


def on_submit(eng: Engine, doc: dict[str, Any]) -> None:
    if doc.get("difference"):  # before_submit: a draft may be unbalanced, a submitted entry may not
        raise validation(f"Total Debit must be equal to Total Credit. The difference is {doc['difference']}")
    if doc.get("voucher_type") == "Bank Entry" and not (doc.get("cheque_no") and doc.get("cheque_date")):
        raise validation("Reference No & Reference Date is required for Bank Entry")
    if doc.get("cheque_date") and not doc.get("cheque_no"):
        raise validation("Reference No is mandatory if you entered Reference Date")
    check_closed_period(eng, doc)
    _check_fiscal_year(eng, doc)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in doc.get("accounts") or []:
        key = (row.get("account"), row.get("party_type"), row.get("party"), row.get("cost_center"),
               row.get("reference_type"), row.get("reference_name"))  # fmt: skip
        entry = merged.get(key)
        if entry is None:
            merged[key] = entry = _gl_entry(doc, row)
        else:
            for f in ("debit", "credit", "debit_in_account_currency", "credit_in_account_currency"):
                entry[f] = _flt(entry[f] + _flt(row.get(f)), 2)
    for entry in merged.values():
        _check_account(eng, doc, str(entry["account"]))
        for suffix in (
            "",
            "_in_account_currency",
        ):  # net, then flip negatives (toggle_debit_credit_if_negative)
            net = _flt(entry["debit" + suffix] - entry["credit" + suffix], 2)
            entry["debit" + suffix], entry["credit" + suffix] = (net, 0.0) if net >= 0 else (0.0, -net)
        entry["creation"] = entry["modified"] = doc.get("modified") or eng.now()
        eng.store.insert(entry)
    _update_invoices(eng, doc, 1)


def _update_invoices(eng: Engine, doc: dict[str, Any], sign: int) -> None:
    """A row against a Sales Invoice pays (credit) or re-opens (debit) its outstanding amount; a debit row
    against a Credit Note (negative outstanding) uses it up. Payments may not exceed the outstanding amount,
    except in a Credit Note / Debit Note entry (validate_invoices)."""
    from amz2erp_sim.erpnext import invoice as erpnext_invoice

    totals: dict[str, float] = {}
    for idx, row in enumerate(doc.get("accounts") or [], start=1):
        if row.get("reference_type") != "Sales Invoice" or not row.get("reference_name"):
            continue
        si = eng.store.get("Sales Invoice", str(row["reference_name"]))
        if si is None:
            raise validation(f"Row {idx}: Invalid reference {row['reference_name']}")
        if si.get("customer") != row.get("party") or (si.get("debit_to") and si["debit_to"] != row.get("account")):
            raise validation(
                f"Row {idx}: Party / Account does not match with Customer / Debit To in Sales Invoice {si['name']}"
            )
        totals[si["name"]] = totals.get(si["name"], 0.0) + _flt(row.get("credit_in_account_currency"))
    if sign > 0 and doc.get("voucher_type") not in ("Credit Note", "Debit Note"):
        for name, total in totals.items():
            si = eng.store.get("Sales Invoice", name) or {}
            if int(_flt(si.get("docstatus"))) != 1:
                raise validation(f"Sales Invoice {name} is not submitted")
            if total and _flt(si.get("outstanding_amount"), 2) < _flt(total, 2):
                raise validation(
                    f"Payment against Sales Invoice {name} cannot be greater than Outstanding Amount "
                    f"{si.get('outstanding_amount')}"
                )
    for row in doc.get("accounts") or []:
        if row.get("reference_type") != "Sales Invoice" or not row.get("reference_name"):
            continue
        si = eng.store.get("Sales Invoice", str(row["reference_name"]))
        if si is None:
            continue
        if int(_flt(si.get("docstatus"))) != 1:
            if sign > 0:
                raise validation(f"Sales Invoice {si['name']} is not submitted")
            continue
        paid = _flt(row.get("credit_in_account_currency")) - _flt(row.get("debit_in_account_currency"))
        si["outstanding_amount"] = _flt(_flt(si.get("outstanding_amount")) - sign * paid, 2)
        erpnext_invoice.set_si_status(eng, si)


def _gl_entry(doc: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": _hash(), "owner": "Administrator", "modified_by": "Administrator",
                             "docstatus": 1, "idx": 0, "doctype": GLE}  # fmt: skip
    entry.update(FIELDS[GLE])
    entry.update(
        posting_date=doc.get("posting_date"), transaction_date=None, account=row.get("account"),
        account_currency=row.get("account_currency"), against=row.get("against_account"),
        party_type=row.get("party_type"), party=row.get("party"), voucher_type=JE, voucher_no=doc["name"],
        voucher_detail_no=row.get("name"), against_voucher_type=row.get("reference_type"),
        against_voucher=row.get("reference_name"), cost_center=row.get("cost_center"),
        debit=_flt(row.get("debit")), credit=_flt(row.get("credit")),
        debit_in_account_currency=_flt(row.get("debit_in_account_currency")),
        credit_in_account_currency=_flt(row.get("credit_in_account_currency")), is_opening=doc.get("is_opening"),
        is_advance=row.get("is_advance") or "No", company=doc.get("company"), remarks=doc.get("remark"),
    )  # fmt: skip
    return entry


def _check_fiscal_year(eng: Engine, doc: dict[str, Any]) -> None:
    """Every GL Entry needs an enabled Fiscal Year (of the company, or of no company) holding its date."""
    posting = str(doc.get("posting_date"))[:10]
    for fy in eng.store.scan("Fiscal Year"):
        companies = [r.get("company") for r in fy.get("companies") or []]
        if (
            not int(_flt(fy.get("disabled")))
            and str(fy.get("year_start_date")) <= posting <= str(fy.get("year_end_date"))
            and (not companies or doc.get("company") in companies)
        ):
            return
    message = (
        f"Date {_us_date(posting)} is not in any active Fiscal Year for <strong>{doc.get('company')}</strong>"
    )
    raise FrappeError(417, "FiscalYearError", [plain_message(message)], module="erpnext.accounts.utils",
                      exc_source=True)  # fmt: skip


def check_closed_period(eng: Engine, doc: dict[str, Any]) -> None:
    """An enabled Accounting Period of the company holding ``posting_date`` that closes this doctype."""
    posting = str(doc.get("posting_date"))[:10]
    for period in eng.store.scan(ACCOUNTING_PERIOD):
        if (
            period.get("company") == doc.get("company")
            and not int(_flt(period.get("disabled")))
            and str(period.get("start_date")) <= posting <= str(period.get("end_date"))
            and any(
                r.get("document_type") == doc["doctype"] and int(_flt(r.get("closed")))
                for r in period.get("closed_documents") or []
            )
        ):
            message = (
                f"You cannot create a {doc['doctype']} within the closed Accounting Period "
                f"<strong>{period['name']}</strong>"
            )
            raise FrappeError(417, "ClosedAccountingPeriod", [error_message(message)], exc_source=True,
                              module="erpnext.accounts.doctype.accounting_period.accounting_period")  # fmt: skip


def post_gl(eng: Engine, doc: dict[str, Any], voucher_type: str, rows: list[dict[str, Any]]) -> None:
    """GL Entries of another voucher (a Sales Invoice): merged per account/party/cost center/against voucher,
    negatives flipped, every account checked like a Journal Entry's."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row.get("account"), row.get("party"), row.get("cost_center"), row.get("against_voucher"))
        entry = merged.get(key)
        if entry is None:
            entry = {"name": _hash(), "owner": "Administrator", "modified_by": "Administrator", "docstatus": 1,
                     "idx": 0, "doctype": GLE, **FIELDS[GLE]}  # fmt: skip
            entry.update({k: v for k, v in row.items() if k in FIELDS[GLE]})
            entry.update(posting_date=doc.get("posting_date"), voucher_type=voucher_type, voucher_no=doc["name"],
                         company=doc.get("company"), remarks=doc.get("remarks"))  # fmt: skip
            for f in ("debit", "credit", "debit_in_account_currency", "credit_in_account_currency"):
                entry[f] = 0.0
            merged[key] = entry
        for f in ("debit", "credit", "debit_in_account_currency", "credit_in_account_currency"):
            entry[f] = _flt(entry[f] + _flt(row.get(f)), 2)
    for entry in merged.values():
        acc = eng.store.get("Account", str(entry["account"])) or {}
        entry["account_currency"] = acc.get("account_currency")
        _check_account(eng, dict(doc, doctype=voucher_type), str(entry["account"]))
        for suffix in ("", "_in_account_currency"):
            net = _flt(entry["debit" + suffix] - entry["credit" + suffix], 2)
            entry["debit" + suffix], entry["credit" + suffix] = (net, 0.0) if net >= 0 else (0.0, -net)
        if not (entry["debit"] or entry["credit"]):
            continue
        entry["creation"] = entry["modified"] = eng.now()
        eng.store.insert(entry)


def cancel_gl(eng: Engine, voucher_type: str, voucher_no: str) -> None:
    """Mark a voucher's GL Entries cancelled and add the reversing ones."""
    for entry in eng.store.scan(GLE, {"voucher_no": voucher_no}):
        if entry.get("voucher_type") != voucher_type or int(_flt(entry.get("is_cancelled"))):
            continue
        entry["is_cancelled"] = 1
        eng.store.update(entry)
        reverse = dict(entry, name=_hash(), is_cancelled=1, remarks=f"On cancellation of {voucher_no}")
        for a, b in (("debit", "credit"), ("debit_in_account_currency", "credit_in_account_currency")):
            reverse[a], reverse[b] = entry[b], entry[a]
        eng.store.insert(reverse)


def _check_account(eng: Engine, doc: dict[str, Any], name: str) -> None:
    acc = eng.store.get("Account", name) or {}
    where = f"{doc.get('doctype') or JE} {doc['name']}: Account {name}"
    if int(_flt(acc.get("is_group"))):
        raise validation(f"{where} is a Group Account and group accounts cannot be used in transactions")
    if acc.get("company") != doc.get("company"):
        raise validation(f"{where} does not belong to Company {doc.get('company')}")
    if int(_flt(acc.get("disabled"))):
        raise validation(f"{where} is inactive")


def on_cancel(eng: Engine, doc: dict[str, Any]) -> None:
    _update_invoices(eng, doc, -1)
    for entry in eng.store.scan(GLE, {"voucher_no": str(doc["name"])}):
        if entry.get("voucher_type") != JE or int(_flt(entry.get("is_cancelled"))):
            continue
        entry["is_cancelled"] = 1
        eng.store.update(entry)
        reverse = dict(entry, name=_hash(), is_cancelled=1, remarks=f"On cancellation of {doc['name']}")
        for a, b in (("debit", "credit"), ("debit_in_account_currency", "credit_in_account_currency")):
            reverse[a], reverse[b] = entry[b], entry[a]
        eng.store.insert(reverse)


def before_delete(eng: Engine, doc: dict[str, Any]) -> None:
    entries = [
        e for e in eng.store.scan(GLE, {"voucher_no": str(doc["name"])}) if e.get("voucher_type") == JE
    ]
    if not entries:
        return
    if eng.store.get_meta(_SETTING) != "1":
        url = eng.site_url()
        name, gl = str(doc["name"]), str(entries[0]["name"])
        msg = (
            f'Cannot delete or cancel because {JE} <a href="{url}/app/journal-entry/{quote(name)}">{name}</a> '
            f'is linked with {GLE} <a href="{url}/app/gl-entry/{quote(gl)}">{gl}</a> '
        )
        raise FrappeError(417, "LinkExistsError", [error_message(msg)])
    for e in entries:
        eng.store.delete(GLE, str(e["name"]))


# --------------------------------------------------------------------------- direct helpers for tests


def set_delete_linked_ledger_entries(sim: ErpNextSimulator, enabled: bool) -> None:
    """Accounts Settings ``delete_linked_ledger_entries`` (not reachable through REST in the simulator)."""
    with sim.lock, sim.store.transaction():
        sim.store.set_meta(_SETTING, "1" if enabled else "0")


def account_balances(sim: ErpNextSimulator, company: str | None = None) -> dict[str, Decimal]:
    """Σ debit − Σ credit (company currency) of the live GL Entries, per account."""
    out: dict[str, Decimal] = {}
    with sim.lock:
        entries = sim.store.scan(GLE)
    for e in entries:
        if int(_flt(e.get("is_cancelled"))) or (company and e.get("company") != company):
            continue
        net = Decimal(str(e.get("debit") or 0)) - Decimal(str(e.get("credit") or 0))
        out[str(e["account"])] = out.get(str(e["account"]), Decimal(0)) + net
    return out
