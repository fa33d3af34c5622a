"""The ``[settlements]`` section of the config: where a settlement's Journal Entry books its money.

Account and cost center names may be given without the company abbreviation (" - ABBR"); amz2erp completes
them, as it does for ``[accounts]``. Like every other section, unknown keys are an error.

```toml
[settlements]
bank_account = "Amazon Payouts"          # the Bank/Cash account Amazon pays into (required to post)
clearing_account = "Amazon Settlement Clearing"   # credited when Amazon charges instead of paying
suspense_account = "Amazon Unmapped"     # rows no category rule matches
cost_center = ""                         # default: the company's
unmapped = "suspense"                    # or "error": refuse to post a settlement with unmapped rows
mode = "summary"                         # or "invoice": Sales Invoices / Credit Notes per order, cleared here
[settlements.accounts]                   # category -> account overrides
[settlements.map]                        # "transaction-type|amount-type|amount-description" -> category
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from amz2erp.settlement_categories import CategoryTable, default_table, parse_account_overrides, parse_rules

__all__ = ["SettlementsSettings"]


class SettlementsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bank_account: str = ""  # empty: settlements can be read and dry-run, not posted
    clearing_account: str = Field(default="Amazon Settlement Clearing", min_length=1)
    suspense_account: str = Field(default="Amazon Unmapped", min_length=1)
    cost_center: str = ""
    unmapped: Literal["suspense", "error"] = "suspense"
    # summary: order-side money goes to income by category (one entry per settlement, as A2X posts).
    # invoice: each settled order gets a Sales Invoice (refunds a Credit Note) and the entry clears them.
    mode: Literal["summary", "invoice"] = "summary"
    accounts: dict[str, str] = Field(default_factory=dict)
    map: dict[str, str] = Field(default_factory=dict)

    @field_validator("bank_account", "clearing_account", "suspense_account", "cost_center")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("accounts")
    @classmethod
    def _categories(cls, value: dict[str, str]) -> dict[str, str]:
        parse_account_overrides(value)  # a ValueError names the bad key
        return value

    @field_validator("map")
    @classmethod
    def _rules(cls, value: dict[str, str]) -> dict[str, str]:
        parse_rules(value)
        return value

    def category_table(self, base: CategoryTable | None = None) -> CategoryTable:
        """The default table (or ``base``) with this section's ``map`` and ``accounts`` overrides."""
        return (base or default_table()).with_overrides(self.map, self.accounts)
