"""Frappe-shaped errors of the ERPNext simulator and how they are serialised (API v1, tracebacks on)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

_MODULES = {
    "InvalidQtyError": "erpnext.controllers.accounts_controller",
    "ItemPriceDuplicateItem": "erpnext.stock.doctype.item_price.item_price",
}


class FrappeError(Exception):
    """An error answered the way Frappe answers it.

    ``messages`` are the ``_server_messages`` entries (dicts with at least ``message``); ``exception`` is
    the text after ``module.Class: `` (None = the last message); flags pick which keys the body carries.
    """

    def __init__(
        self,
        status: int,
        exc_type: str,
        messages: list[dict[str, Any]] | str | None = None,
        *,
        exception: str | None = None,
        module: str | None = None,
        with_exception: bool = True,
        with_messages: bool = True,
        exc_source: bool = False,
        extra: dict[str, Any] | None = None,
        exception_full: str | None = None,
    ) -> None:
        if isinstance(messages, str):
            messages = [error_message(messages)]
        self.status = status
        self.exc_type = exc_type
        self.messages = messages or []
        self.exception_text = exception
        self.module = module if module is not None else _MODULES.get(exc_type, "frappe.exceptions")
        self.with_exception = with_exception
        self.with_messages = with_messages and bool(self.messages)
        self.exc_source = exc_source
        self.extra = extra or {}
        self.exception_full = exception_full
        super().__init__(self.summary())

    def summary(self) -> str:
        if self.exception_full is not None:
            return self.exception_full
        if self.exception_text is not None:
            text = self.exception_text
        elif self.messages:
            text = str(self.messages[-1].get("message", ""))
        else:
            text = ""
        prefix = f"{self.module}.{self.exc_type}" if self.module else self.exc_type
        return f"{prefix}: {text}" if text else prefix

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.with_exception:
            out["exception"] = self.summary()
        out["exc_type"] = self.exc_type
        if self.with_exception:
            trace = (
                "Traceback (most recent call last):\n"
                '  File "apps/frappe/frappe/app.py", line 120, in application\n'
                "    response = frappe.api.handle(request)\n"
                f"{self.summary()}\n"
            )
            out["exc"] = json.dumps([trace])
        if self.with_messages:
            out["_server_messages"] = server_messages(self.messages)
        if self.exc_source:
            out["_exc_source"] = "erpnext (app)"
        out.update(self.extra)
        return out


def error_message(
    message: str, title: str = "Message", indicator: str | None = "red", raise_exception: bool = True
) -> dict[str, Any]:
    msg: dict[str, Any] = {"message": message, "title": title}
    if indicator:
        msg["indicator"] = indicator
    if raise_exception:
        msg["raise_exception"] = 1
        msg["__frappe_exc_id"] = hashlib.sha224(message.encode()).hexdigest()
    return msg


def plain_message(message: str, title: str = "Message") -> dict[str, Any]:
    return {"message": message, "title": title}


def server_messages(messages: list[dict[str, Any]]) -> str:
    return json.dumps([json.dumps(m, ensure_ascii=False) for m in messages], ensure_ascii=False)


def validation(message: str, *, exc_source: bool = False, title: str = "Message") -> FrappeError:
    return FrappeError(417, "ValidationError", [error_message(message, title)], exc_source=exc_source)


def does_not_exist(doctype: str, name: str) -> FrappeError:
    return FrappeError(
        404, "DoesNotExistError", [error_message(f"{doctype} {name} not found")], with_exception=False
    )


def mandatory(doctype: str, name: str, fieldname: str, label: str) -> FrappeError:
    return FrappeError(
        417,
        "MandatoryError",
        [plain_message(f"Error: Value missing for {doctype}: {label}")],
        exception=f"[{doctype}, {name}]: {fieldname}",
    )


def link_error(label: str, value: Any) -> FrappeError:
    return FrappeError(417, "LinkValidationError", f"Could not find {label}: {value}")


def duplicate_entry(doctype: str, name: str) -> FrappeError:
    return FrappeError(
        409,
        "DuplicateEntryError",
        [
            error_message(
                f"{doctype} <strong>{name}</strong> already exists", "Duplicate Name", raise_exception=False
            )
        ],
        exception=(
            f"('{doctype}', '{name}', IntegrityError(1062, \"Duplicate entry '{name}' for key 'PRIMARY'\"))"
        ),
    )


def timestamp_mismatch(db_modified: str, now: str) -> FrappeError:
    return FrappeError(
        417,
        "TimestampMismatchError",
        f"Error: Document has been modified after you have opened it ({db_modified}, {now}). "
        "Please refresh to get the latest document.",
    )
