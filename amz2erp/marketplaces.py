"""Amazon marketplaces: country code → marketplace id, region, currency, ERPNext country name."""

from __future__ import annotations

from dataclasses import dataclass

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
    #: Who collects the sales tax on an order when the read path does not say (the orders report without its
    #: ``tax-collection-model`` column): "MarketplaceFacilitator" where Amazon collects and remits it for every
    #: order — every US state with a sales tax has a marketplace-facilitator law since 2023-01-01, so Amazon.com
    #: orders in Amazon's two-year horizon are all facilitator-collected. None elsewhere: the tax is the
    #: seller's (Amazon.ca collects only for non-resident sellers; EU/UK/JP prices include VAT and carry no
    #: separate tax on the order).
    tax_collection_model: str | None = None


_ALL = [
    Marketplace("US", "ATVPDKIKX0DER", "na", "USD", "United States", "MarketplaceFacilitator"),
    Marketplace("CA", "A2EUQ1WTGCTBG2", "na", "CAD", "Canada"),
    Marketplace("MX", "A1AM78C64UM0Y8", "na", "MXN", "Mexico"),
    Marketplace("BR", "A2Q3Y263D00KWC", "na", "BRL", "Brazil"),
    Marketplace("UK", "A1F83G8C2ARO7P", "eu", "GBP", "United Kingdom"),
    Marketplace("DE", "A1PA6795UKMFR9", "eu", "EUR", "Germany"),
    Marketplace("FR", "A13V1IB3VIYZZH", "eu", "EUR", "France"),
    Marketplace("IT", "APJ6JRA9NG5V4", "eu", "EUR", "Italy"),
    Marketplace("ES", "A1RKKUPIHCS9HS", "eu", "EUR", "Spain"),
    Marketplace("NL", "A1805IZSGTT6HS", "eu", "EUR", "Netherlands"),
    Marketplace("SE", "A2NODRKZP88ZB9", "eu", "SEK", "Sweden"),
    Marketplace("PL", "A1C3SOZRARQ6R3", "eu", "PLN", "Poland"),
    Marketplace("BE", "AMEN7PMS3EDWL", "eu", "EUR", "Belgium"),
    Marketplace("TR", "A33AVAJ2PDY3EV", "eu", "TRY", "Turkey"),
    Marketplace("AE", "A2VIGQ35RCS4UG", "eu", "AED", "United Arab Emirates"),
    Marketplace("SA", "A17E79C6D8DWNP", "eu", "SAR", "Saudi Arabia"),
    Marketplace("EG", "ARBP9OOSHTCHU", "eu", "EGP", "Egypt"),
    Marketplace("IN", "A21TJRUUN4KGV", "eu", "INR", "India"),
    Marketplace("JP", "A1VC38T7YXB528", "fe", "JPY", "Japan"),
    Marketplace("AU", "A39IBJ37TRP1C6", "fe", "AUD", "Australia"),
    Marketplace("SG", "A19VAU5U5O7RUS", "fe", "SGD", "Singapore"),
]

BY_CODE = {m.code: m for m in _ALL}
BY_ID = {m.marketplace_id: m for m in _ALL}
BY_CODE["GB"] = BY_CODE["UK"]


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
