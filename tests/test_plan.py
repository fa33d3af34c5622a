"""PlannedWrite (engine/plan.py): the dry run's line and its --json form, from the typed fields alone."""

from __future__ import annotations

from amz2erp.engine.plan import Action, PlannedWrite


def test_a_create_is_named_by_its_key_and_serialises_only_what_is_set() -> None:
    doc = {"amazon_order_id": "111-1234567-1234567", "customer": "Amazon US"}
    plan = PlannedWrite(Action.CREATE, "Sales Order", key="111-1234567-1234567", doc=doc)
    assert plan.line() == "would create Sales Order 111-1234567-1234567"
    assert plan.as_dict() == {"action": "create", "doctype": "Sales Order", "doc": doc}
    assert plan.body() == doc


def test_a_skip_names_the_order_and_its_reason() -> None:
    plan = PlannedWrite(Action.SKIP, amazon_order_id="111-1234567-1234567", reason="Pending: not a sale yet")
    assert plan.line() == "would skip  111-1234567-1234567 Pending: not a sale yet"
    assert plan.as_dict() == {"action": "skip", "amazon_order_id": "111-1234567-1234567",
                              "reason": "Pending: not a sale yet"}


def test_an_update_prints_the_document_name_and_carries_the_changes() -> None:
    plan = PlannedWrite(Action.UPDATE_STATUS, "Sales Order", "SAL-ORD-0001", changes={"amazon_order_status": "Shipped"})
    assert plan.line() == "would update status Sales Order SAL-ORD-0001"
    assert plan.as_dict()["changes"] == {"amazon_order_status": "Shipped"}
    drift = PlannedWrite(Action.DRIFT, "Sales Order", "SAL-ORD-0001", differences="grand_total: 10 → 12")
    assert drift.line() == "would drift Sales Order SAL-ORD-0001 grand_total: 10 → 12"
