"""What a simulator is configured with: ``SpApiOptions``, fault injection settings and Amazon's default
usage plans."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from amz2erp.amazon import limits

#: default usage plans (rate per second, burst): Amazon's, as the product knows them (one table of that fact),
#: plus the per-order Finances call only the Frappe-pattern baseline of bench/ makes
RATE_LIMITS: dict[str, tuple[float, int]] = {**limits.RATE_LIMITS, "listFinancialEventsByOrderId": (0.5, 30)}


FAULT_KINDS = ("429", "500", "html503", "timeout", "reset", "truncated")


#: operations that are not SP-API calls (never rate limited; faults only with include_auth / explicitly)
AUTH_OPERATION = "lwaToken"


DOCUMENT_OPERATION = "downloadReportDocument"


@dataclass
class FaultConfig:
    """Random fault injection. ``rate`` is the probability per SP-API request; ``kinds`` are drawn
    uniformly. ``operations`` restricts faults to those operation names (None = all SP-API operations
    and report document downloads). ``include_auth`` also hits ``POST /auth/o2/token``."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    timeout_seconds: float = 1.0
    include_auth: bool = False
    operations: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; known: {FAULT_KINDS}")



@dataclass(frozen=True)
class SpApiOptions:
    """How one simulator behaves (everything except its data and clock); the defaults suit tests."""

    #: True: Amazon's usage plans; False: unlimited; a dict overrides single operations' (rate, burst)
    rate_limits: bool | dict[str, tuple[float, int]] = True
    faults: FaultConfig | None = None
    #: False: the app has no PII role, so createRestrictedDataToken answers 403 (as for most sellers' apps)
    pii_allowed: bool = True
    report_processing_seconds: float = 30.0
    lwa_refresh_token: str = "sim-refresh-token"
    lwa_client_id: str = "sim-client-id"
    lwa_client_secret: str = "sim-client-secret"
    #: check requests against Amazon's models (only when ``models_dir`` is given)
    strict: bool = True
    seller_marketplaces: tuple[str, ...] | None = None
    order_items_page_size: int = 30
    access_token_ttl: float | None = None
    host: str = "127.0.0.1"
    port: int = 0
    seller_id: str = "A2SIMSELLER01X"
    models_dir: str | Path | None = None
    report_tax_columns: bool = True
    settlement_seed: int = 1
    #: settlement currency → (payout currency, rate): the seller's bank account is in another currency, so
    #: Amazon converts the payout and the closed event group's ConvertedTotal is in that currency
    payout_conversions: dict[str, tuple[str, Decimal]] | None = None
