"""Amazon marketplaces: the per-marketplace facts, in one table.

Country code → marketplace id, region, currency, ERPNext country name, the time zone Seller Central and the
order reports use for the marketplace's local dates, the sales channel Amazon names it by in orders
(``SalesChannel``, the report's ``sales-channel``), and whether Amazon keeps its orders beyond the two-year
horizon (JP, AU and SG do). The global facts (rate of orders, report window, horizon length) are in
`amz2erp.amazon.limits`; the product and the simulators both read these two modules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from amz2erp.errors import AmazonBadRequestError

REGION_ENDPOINTS = {
    "na": "https://sellingpartnerapi-na.amazon.com",
    "eu": "https://sellingpartnerapi-eu.amazon.com",
    "fe": "https://sellingpartnerapi-fe.amazon.com",
}
LWA_ENDPOINT = "https://api.amazon.com/auth/o2/token"


@dataclass(frozen=True)
class Marketplace:
    code: str  # country code as sellers know it (UK, not GB)
    marketplace_id: str
    region: str  # na | eu | fe
    currency: str
    country: str  # ERPNext Country name
    time_zone: str  # IANA zone of the marketplace's local dates (North America reports in Pacific time)
    sales_channel: str  # "Amazon.com": Orders API SalesChannel / marketplaceName, report sales-channel
    full_history: bool = False  # Amazon returns orders older than two years here (JP, AU, SG)
    #: Who collects the sales tax on an order when the read path does not say (the orders report without its
    #: ``tax-collection-model`` column): "MarketplaceFacilitator" where Amazon collects and remits it for every
    #: order — every US state with a sales tax has a marketplace-facilitator law since 2023-01-01, so Amazon.com
    #: orders in Amazon's two-year horizon are all facilitator-collected. None elsewhere: the tax is the
    #: seller's (Amazon.ca collects only for non-resident sellers; EU/UK/JP prices include VAT and carry no
    #: separate tax on the order).
    tax_collection_model: str | None = None


_ALL = [
    Marketplace("US", "ATVPDKIKX0DER", "na", "USD", "United States", "America/Los_Angeles", "Amazon.com",
                tax_collection_model="MarketplaceFacilitator"),
    Marketplace("CA", "A2EUQ1WTGCTBG2", "na", "CAD", "Canada", "America/Los_Angeles", "Amazon.ca"),
    Marketplace("MX", "A1AM78C64UM0Y8", "na", "MXN", "Mexico", "America/Mexico_City", "Amazon.com.mx"),
    Marketplace("BR", "A2Q3Y263D00KWC", "na", "BRL", "Brazil", "America/Sao_Paulo", "Amazon.com.br"),
    Marketplace("UK", "A1F83G8C2ARO7P", "eu", "GBP", "United Kingdom", "Europe/London", "Amazon.co.uk"),
    Marketplace("DE", "A1PA6795UKMFR9", "eu", "EUR", "Germany", "Europe/Berlin", "Amazon.de"),
    Marketplace("FR", "A13V1IB3VIYZZH", "eu", "EUR", "France", "Europe/Paris", "Amazon.fr"),
    Marketplace("IT", "APJ6JRA9NG5V4", "eu", "EUR", "Italy", "Europe/Rome", "Amazon.it"),
    Marketplace("ES", "A1RKKUPIHCS9HS", "eu", "EUR", "Spain", "Europe/Madrid", "Amazon.es"),
    Marketplace("NL", "A1805IZSGTT6HS", "eu", "EUR", "Netherlands", "Europe/Amsterdam", "Amazon.nl"),
    Marketplace("SE", "A2NODRKZP88ZB9", "eu", "SEK", "Sweden", "Europe/Stockholm", "Amazon.se"),
    Marketplace("PL", "A1C3SOZRARQ6R3", "eu", "PLN", "Poland", "Europe/Warsaw", "Amazon.pl"),
    Marketplace("BE", "AMEN7PMS3EDWL", "eu", "EUR", "Belgium", "Europe/Brussels", "Amazon.com.be"),
    Marketplace("TR", "A33AVAJ2PDY3EV", "eu", "TRY", "Turkey", "Europe/Istanbul", "Amazon.com.tr"),
    Marketplace("AE", "A2VIGQ35RCS4UG", "eu", "AED", "United Arab Emirates", "Asia/Dubai", "Amazon.ae"),
    Marketplace("SA", "A17E79C6D8DWNP", "eu", "SAR", "Saudi Arabia", "Asia/Riyadh", "Amazon.sa"),
    Marketplace("EG", "ARBP9OOSHTCHU", "eu", "EGP", "Egypt", "Africa/Cairo", "Amazon.eg"),
    Marketplace("IN", "A21TJRUUN4KGV", "eu", "INR", "India", "Asia/Kolkata", "Amazon.in"),
    Marketplace("JP", "A1VC38T7YXB528", "fe", "JPY", "Japan", "Asia/Tokyo", "Amazon.co.jp", True),
    Marketplace("AU", "A39IBJ37TRP1C6", "fe", "AUD", "Australia", "Australia/Sydney", "Amazon.com.au", True),
    Marketplace("SG", "A19VAU5U5O7RUS", "fe", "SGD", "Singapore", "Asia/Singapore", "Amazon.sg", True),
]

BY_CODE = {m.code: m for m in _ALL}
BY_ID = {m.marketplace_id: m for m in _ALL}
BY_CODE["GB"] = BY_CODE["UK"]
#: the report's sales-channel, lower-cased (reports write "Amazon.com" or "amazon.com") → marketplace
BY_SALES_CHANNEL = {m.sales_channel.lower(): m for m in _ALL}


def resolve(code_or_id: str) -> Marketplace:
    """A marketplace from a country code (``US``, ``uk``) or a marketplace id; ``KeyError`` if unknown."""
    key = code_or_id.strip()
    if key.upper() in BY_CODE:
        return BY_CODE[key.upper()]
    if key in BY_ID:
        return BY_ID[key]
    raise KeyError(code_or_id)


def all_marketplaces() -> list[Marketplace]:
    return list(_ALL)


def resolve_ids(codes_or_ids: Iterable[str]) -> list[str]:
    """Marketplace ids from codes or ids, in order, each once; an unknown value is taken as an id as given.
    Nothing at all is a bad request (Amazon would answer 400)."""
    out: list[str] = []
    for c in codes_or_ids:
        try:
            mid = resolve(c).marketplace_id
        except KeyError:
            mid = c.strip()
        if mid and mid not in out:
            out.append(mid)
    if not out:
        raise AmazonBadRequestError("no marketplace given")
    return out
