"""One secret masker: the CLI's is handed to both remote clients, which add what they learn."""

from __future__ import annotations

from datetime import datetime, timezone

from amz2erp.amazon.transport import TokenStore
from amz2erp.clock import SimulatedClock
from amz2erp.config import ErpNextSettings
from amz2erp.erpnext.client import ErpNextClient, error_from_response
from amz2erp.log import SecretMasker

KEY, SECRET = "key-0123456789", "secret-0123456789abcdef"


def test_the_erpnext_client_adds_its_secrets_to_the_masker_it_is_given() -> None:
    masker = SecretMasker()
    ErpNextClient(ErpNextSettings(url="http://127.0.0.1:9", api_key=KEY, api_secret=SECRET), masker=masker)
    assert masker.mask(f"token {KEY}:{SECRET}") == "token ***:***"


def test_error_messages_go_through_the_same_masker() -> None:
    masker = SecretMasker([SECRET])
    err = error_from_response(417, {"exc_type": "ValidationError", "_server_messages": f'["bad {SECRET}"]'},
                              what="insert", masker=masker)
    assert SECRET not in str(err) and "***" in str(err)


def test_an_issued_access_token_is_masked_everywhere_the_masker_is_used() -> None:
    masker = SecretMasker()
    clock = SimulatedClock(datetime(2026, 11, 1, tzinfo=timezone.utc))
    store = TokenStore(clock, lambda: None, masker)
    token = "Atza|IwEBIJ-an-access-token-value"
    store.get(lambda: {"access_token": token, "expires_in": 3600})
    assert store.issued == [token]
    assert masker.mask(f"Authorization: {token}") == "Authorization: ***"
