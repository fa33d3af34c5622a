"""Sellers API v1: getMarketplaceParticipations and getAccount."""

from __future__ import annotations

from amz2erp_sim.spapi.core import Response, SimState, _Ctx


class SellersApi(SimState):
    """Sellers API v1: the operations of this API area, on the shared ``SimState``."""

    def _op_participations(self, ctx: _Ctx) -> Response:
        return self._json(200, {"payload": self._participations()})

    def _op_account(self, ctx: _Ctx) -> Response:
        account = {
            "marketplaceParticipationList": self._participations(),
            "businessType": "PRIVATE_LIMITED",
            "sellingPlan": "PROFESSIONAL",
            "business": {
                "name": "Sim Store GmbH",
                "registeredBusinessAddress": {"addressLine1": "Hauptstraße 1", "city": "Berlin", "postalCode": "10115",
                                              "countryCode": "DE"},
            },
        }  # fmt: skip
        return self._json(200, {"payload": account})
