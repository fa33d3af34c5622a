"""What a dry run would write: one typed `PlannedWrite` per ERPNext change (or per decision not to write),
printed by the CLI as a "would …" line and serialised under ``plans`` in ``--json``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Action(str, Enum):
    """What would happen to a document. The values are what the dry run prints and ``--json`` carries."""

    CREATE = "create"
    UPDATE = "update"
    UPDATE_AND_SUBMIT = "update and submit"
    UPDATE_STATUS = "update status"
    CANCEL = "cancel"
    CANCEL_DRAFT = "cancel draft"
    DELETE_DRAFT = "delete draft"
    CANCEL_AND_AMEND = "cancel and amend"
    DRIFT = "drift"  # a submitted document differs from Amazon and is only reported ([orders] amend_on_drift off)
    SKIP = "skip"  # an order that is not a sale (pending, cancelled before import, …): nothing is written
    CONFLICT = "conflict"  # ERPNext and Amazon disagree in a way a human decided: nothing is written


@dataclass(frozen=True)
class PlannedWrite:
    action: Action
    doctype: str = ""
    name: str = ""  # the ERPNext document it acts on, when it exists already
    key: str = ""  # what names a document still to be created (order id, item code, customer name) in the line
    amazon_order_id: str = ""  # set on skips and conflicts, which have no document
    doc: Mapping[str, Any] | None = None  # the full document that would be sent
    changes: Mapping[str, Any] | None = None  # only the fields that would change
    reason: str = ""  # why an order is skipped or in conflict
    differences: str = ""  # drift: "field: ours → Amazon's; …"

    def line(self) -> str:
        """``would <action> <doctype> <name> <detail>``, the dry run's output line."""
        label = self.name or self.key or self.amazon_order_id
        detail = self.reason or self.differences
        return f"would {self.action.value} {self.doctype} {label} {detail}".rstrip()

    def body(self) -> Mapping[str, Any]:
        """What `-v` prints under the line: the document, else the changes."""
        return self.doc or self.changes or {}

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` form: the action and only the fields that are set (the keys are the field names)."""
        out: dict[str, Any] = {"action": self.action.value}
        for field in ("doctype", "name", "amazon_order_id", "reason", "differences"):
            if getattr(self, field):
                out[field] = getattr(self, field)
        if self.doc is not None:
            out["doc"] = dict(self.doc)
        if self.changes is not None:
            out["changes"] = dict(self.changes)
        return out
