"""The settlement schedule of the simulated account and the V2 settlement reports published from it
(the settlement data itself is generated in ``settlements``)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from amz2erp_sim.datagen import marketplace
from amz2erp_sim.spapi import settlements as sim_settlements
from amz2erp_sim.spapi.core import ReportJob, SimState


class SettlementBookApi(SimState):
    """The settlement schedule and its published V2 reports, on the shared ``SimState`` (the Reports and
    Finances areas read it, so they build on this class)."""

    def _settlement_book(self) -> list[sim_settlements.SimSettlement]:
        if self._settlements is None:  # generated on first use, from the orders as they are then
            self._settlements = sim_settlements.generate_settlements(
                self.settlement_seed, self._orders.values(), self._now()
            )
        return self._settlements

    @property
    def settlements(self) -> list[sim_settlements.SimSettlement]:
        """Every settlement period (past, open and scheduled), oldest first."""
        with self._lock:
            return list(self._settlement_book())

    def settlement(self, settlement_id: str) -> sim_settlements.SimSettlement:
        with self._lock:
            for s in self._settlement_book():
                if s.settlement_id == settlement_id:
                    return s
        raise KeyError(settlement_id)

    def add_settlement(self, settlement: sim_settlements.SimSettlement) -> None:
        """Add a settlement; its report is published once the clock passes ``report_created``."""
        with self._lock:
            self._settlement_book().append(settlement)

    def reissue_settlement(self, settlement_id: str, **changes: Any) -> sim_settlements.SimSettlement:
        """Amazon reissues a settlement: same settlement-id, other content (``rows=``, ``stated_total=`` …).
        A published settlement gets a second report, created now, next to the first one."""
        with self._lock:
            book = self._settlement_book()
            for i, s in enumerate(book):
                if s.settlement_id == settlement_id:
                    new = sim_settlements.reissue(s, **changes)
                    book[i] = new
                    if self._published.get(settlement_id):
                        self._publish_report(new, self._now())
                    return new
        raise KeyError(settlement_id)

    def regenerate_settlements(self, seed: int | None = None) -> None:
        """Rebuild the settlement schedule from the current orders (published reports stay)."""
        with self._lock:
            self.settlement_seed = self.settlement_seed if seed is None else seed
            self._settlements = None

    def _publish_report(self, s: sim_settlements.SimSettlement, created: datetime) -> None:
        self._report_seq += 1
        self._doc_seq += 1
        rid = str(self._report_seq)
        doc_id = f"amzn1.spdoc.1.4.na.sim{self._doc_seq:06d}.{secrets.token_hex(6)}"
        self._documents[doc_id] = sim_settlements.render_v2(s)
        self._plain_documents.add(doc_id)
        # dated back by the processing time: a settlement report is DONE the moment it appears
        created = created - timedelta(seconds=self.report_processing_seconds)
        self._reports[rid] = ReportJob(
            rid, sim_settlements.REPORT_TYPE, [s.marketplace_id], s.start, s.end, created, "DONE", doc_id
        )
        self._published[s.settlement_id] = self._published.get(s.settlement_id, 0) + 1
        if self.settlement_listed_per_eu_marketplace and marketplace(s.marketplace_id).region == "eu":
            # a unified EU account sees the same settlement once per marketplace, same document
            for mp in self._participations():
                mid = mp["marketplace"]["id"]
                if mid != s.marketplace_id and marketplace(mid).region == "eu":
                    self._report_seq += 1
                    extra = str(self._report_seq)
                    self._reports[extra] = ReportJob(extra, sim_settlements.REPORT_TYPE, [mid], s.start, s.end,
                                                   created, "DONE", doc_id)  # fmt: skip

    def _publish_settlements(self, *, generate: bool = True) -> None:
        if self._settlements is None and not generate:
            return
        now = self._now()
        for s in self._settlement_book():
            if s.settlement_id not in self._published and s.report_available(now):
                self._publish_report(s, s.report_created)
