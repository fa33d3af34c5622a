"""Settlements: the V2 flat-file settlement reports (listed with getReports: Amazon publishes them itself, they
cannot be requested, and keeps them 90 days), Finances v0 financial event groups and Finances 2024-06-19
transactions. Every call goes through the `Caller`; documents through the report pipeline's download."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from amz2erp.amazon import limits
from amz2erp.amazon import reports as rp
from amz2erp.amazon.calls import Caller
from amz2erp.amazon.marketplaces import resolve_ids
from amz2erp.amazon.settlement_report import (
    REPORT_TYPE,
    Settlement,
    SettlementSource,
    parse_settlement_report,
)
from amz2erp.amazon.transport import ApiResponse, Transport
from amz2erp.clock import Clock

#: Amazon keeps reports 90 days: list one day less, a margin against its clock
LISTING_WINDOW = limits.REPORT_RETENTION - timedelta(days=1)
#: a report created just before the cursor is read again
CURSOR_OVERLAP = timedelta(days=2)
#: listFinancialEventGroups answers nothing for wider windows
EVENT_GROUP_WINDOW = timedelta(days=180)


@dataclass(frozen=True)
class SettlementReportRef:
    """A settlement report Amazon lists: its document holds one settlement (the id is inside)."""

    report_id: str
    document_id: str
    created: datetime
    marketplace_ids: tuple[str, ...] = ()


class SettlementFetcher:
    """The settlement operations of one `AmazonClient`."""

    def __init__(self, clock: Clock, caller: Caller, transport: Transport, reports: rp.ReportPipeline) -> None:
        self.clock = clock
        self.caller = caller
        self.transport = transport
        self.reports = reports

    def list_settlement_reports(self, created_since: datetime | None,
                                marketplace_ids: Iterable[str]) -> list[SettlementReportRef]:
        """Closed settlement reports of these marketplaces Amazon still serves, created since
        ``max(created_since − 2 days, now − 89 days)``, oldest first, one per report document (an EU
        settlement is listed once per EU marketplace: the same document, or the same settlement-id, which the
        caller dedupes after parsing)."""
        floor = self.clock.now() - LISTING_WINDOW
        since = floor if created_since is None else max(created_since - CURSOR_OVERLAP, floor)
        # The marketplaces are always named: without them the library sends its default marketplace and only
        # that marketplace's settlements would be listed. getReports takes at most 10 per call.
        mids = resolve_ids(marketplace_ids)
        reports = self.transport.api("reports")
        found: dict[str, SettlementReportRef] = {}
        for batch in (mids[i:i + 10] for i in range(0, len(mids), 10)):
            params: dict[str, Any] = {"reportTypes": REPORT_TYPE, "processingStatuses": "DONE",
                                      "createdSince": rp.iso(since), "pageSize": 100,
                                      "marketplaceIds": ",".join(batch)}
            self._list_into(found, reports, params, batch)
        return sorted(found.values(), key=lambda r: (r.created, r.report_id))

    def _list_into(self, found: dict[str, SettlementReportRef], reports: Any, params: dict[str, Any],
                   mids: list[str]) -> None:
        def fetch(token: str | None) -> ApiResponse:
            # a nextToken carries the original query; Amazon refuses other parameters next to it
            return reports.get_reports(nextToken=token) if token else reports.get_reports(**params)

        for page in self.caller.pages("getReports", fetch, lambda r: r.next_token,
                                      lambda r: isinstance(r.payload.get("reports"), list)):
            for rep in page.payload["reports"]:
                doc = rep.get("reportDocumentId")
                created = rp.parse_datetime(rep.get("createdTime"))
                if rep.get("reportType") != REPORT_TYPE or not doc or created is None:
                    continue
                if rep.get("processingStatus") not in (None, "DONE"):
                    continue
                if not set(rep.get("marketplaceIds") or []) & set(mids):
                    continue
                ref = SettlementReportRef(
                    report_id=str(rep.get("reportId") or ""), document_id=str(doc), created=created,
                    marketplace_ids=tuple(rep.get("marketplaceIds") or ()),
                )
                found.setdefault(ref.document_id, ref)

    def fetch_settlement(self, document_id: str) -> Settlement:
        """One settlement report document, streamed to a temporary file and parsed (one at a time).
        Raises the parser's `SettlementFileError` / `SettlementImbalanceError` for a bad document."""
        with self.reports.raw_document(document_id) as (spool, charset):
            return parse_settlement_report(spool, name=f"settlement report document {document_id}",
                                           charset=charset, origin=SettlementSource.REPORT)

    def list_financial_event_groups(self, started_after: datetime,
                                    started_before: datetime | None = None) -> list[dict[str, Any]]:
        """Finances v0 financial event groups started in [after, before), oldest first, in ≤ 180-day windows.
        Open groups are included (ProcessingStatus "Open"): the caller decides."""
        now = self.clock.now()
        end = started_before or now
        finances = self.transport.api("finances_v0")
        groups: dict[str, dict[str, Any]] = {}
        start = started_after
        while start < end:
            stop = min(start + EVENT_GROUP_WINDOW, end)
            params: dict[str, Any] = {"FinancialEventGroupStartedAfter": rp.iso(start), "MaxResultsPerPage": 100}
            if stop < now - limits.ORDERS_LAG:  # the same "before now − 2 minutes" rule as the Orders API
                params["FinancialEventGroupStartedBefore"] = rp.iso(stop)

            def fetch(token: str | None, params: dict[str, Any] = params) -> ApiResponse:
                return finances.list_financial_event_groups(**({"NextToken": token} if token else params))

            for page in self.caller.pages("listFinancialEventGroups", fetch,
                                          lambda r: r.payload.get("NextToken"),
                                          lambda r: isinstance(r.payload.get("FinancialEventGroupList"), list)):
                for group in page.payload["FinancialEventGroupList"]:
                    gid = group.get("FinancialEventGroupId")
                    if gid:
                        groups.setdefault(str(gid), group)
            start = stop
        return sorted(groups.values(), key=lambda g: (str(g.get("FinancialEventGroupStart") or ""),
                                                      str(g.get("FinancialEventGroupId"))))

    def list_group_transactions(self, group_id: str) -> list[dict[str, Any]]:
        """Every Finances 2024-06-19 transaction of one financial event group (paged)."""
        finances = self.transport.api("finances")
        params = {"relatedIdentifierName": "FINANCIAL_EVENT_GROUP_ID", "relatedIdentifierValue": group_id}

        def fetch(token: str | None) -> ApiResponse:
            return finances.list_transactions(**params, **({"nextToken": token} if token else {}))

        out: list[dict[str, Any]] = []
        for page in self.caller.pages("listTransactions", fetch, lambda r: r.payload.get("nextToken"),
                                      lambda r: isinstance(r.payload.get("transactions"), list)):
            out.extend(page.payload["transactions"])
        return out
