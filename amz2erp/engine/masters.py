"""Master data shared by the order and product writers: customers, addresses, items, price lists, exchange
rates, brands and item groups. Each is looked up by its natural key before it is created, with an intent in
the ledger around the insert, and cached for the run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from amz2erp import mapping
from amz2erp.engine.plan import Action, PlannedWrite
from amz2erp.engine.runtime import KeyedLocks, Runtime, Writer
from amz2erp.errors import (
    Amz2ErpError,
    ErpNextConfigError,
    ErpNextConflictError,
    ErpNextDuplicateError,
    ErpNextUnavailableError,
    RecordError,
    RemoteAuthError,
    RemoteUnavailableError,
)
from amz2erp.models import Order
from amz2erp.state import Kind, Status

if TYPE_CHECKING:
    from amz2erp.config import Settings
    from amz2erp.erpnext.client import ErpNextClient

log = logging.getLogger(__name__)


class FoundRate(NamedTuple):
    rate: Decimal
    configured: bool  # from [orders] exchange_rates (else an ERPNext Currency Exchange record)


def find_exchange_rate(erp: ErpNextClient, settings: Settings, currency: str, company_currency: str,
                       day: str) -> FoundRate | None:
    """The rate currency → company currency on ``day`` (YYYY-MM-DD): ERPNext's latest Currency Exchange on or
    before it, else the configured [orders] exchange_rates; None when neither has one."""
    rows = list(erp.list("Currency Exchange", fields=["exchange_rate", "date"], filters=[
        ["from_currency", "=", currency], ["to_currency", "=", company_currency], ["date", "<=", day]],
        order_by="date desc", limit=1))
    if rows:
        return FoundRate(Decimal(str(rows[0]["exchange_rate"])), configured=False)
    configured = settings.orders.exchange_rates.get(f"{currency}:{company_currency}")
    return None if configured is None else FoundRate(configured, configured=True)


#: A batch of new Addresses whose answer was lost and that a lookup found not written is sent again at most
#: this many times (then the run stops; the intents stay for the next run's lookup).
LOST_BATCH_RESENDS = 2
_ADDRESS_FIELDS = ("name", "address_title", "address_type", "address_line1", "address_line2", "city", "state",
                   "pincode", "country")


class NewBuyer(NamedTuple):
    """A customer to be created with its batch: its natural key and its document."""

    key: str
    doc: dict[str, Any]


class BuyerMasters(NamedTuple):
    """A new buyer's customer and shipping address (None: the order has no address), as written."""

    customer: str
    address: str | None


class OrderRecordError(RecordError):
    """An order that cannot be written as it is (mapping, totals, unknown item, missing rate)."""


class Masters(Writer):
    """The masters one writer needs, for one run. Thread-safe."""

    def __init__(self, rt: Runtime, *, dry_run: bool) -> None:
        super().__init__(rt, dry_run=dry_run)
        self._customer_locks = KeyedLocks()
        self._item_locks = KeyedLocks()
        self._known_items: set[str] = set()
        self._rates: dict[tuple[str, str], Decimal] = {}
        self._price_lists: dict[str, str] = {}
        self._found: dict[tuple[str, str], bool] = {}  # (doctype, name) of brands and item groups
        self._cache_lock = threading.Lock()
        #: customers found (name) or not (None) by the page lookup, by customer key; used once each
        self._customers: dict[str, str | None] = {}
        #: customers this run created: no Address can link them yet, so theirs is not looked up
        self._fresh_customers: set[str] = set()

    # --- the ledger around a master -------------------------------------------------------------------

    def settle(self, kind: Kind, key: str, name: str, *, record: bool = False) -> None:
        """A master found in ERPNext whose ledger entry is not "done": a crash hit between the insert and the
        ledger update, and the lookup settles it (nothing is written again). ``record``: also note a master
        the ledger does not know yet (customers and addresses, found by their natural key)."""
        entry = self.state.get(kind, key)
        unsettled = entry is not None and (entry.status is not Status.DONE or entry.erp_name != name)
        if unsettled or (entry is None and record):
            self.state.mark_done(kind, key, name, "")

    def create_item(self, code: str, doc: dict[str, Any], plan: list[PlannedWrite]) -> bool:
        """Create an Item with its intent in the ledger; False in a dry run (planned, not written)."""
        plan.append(PlannedWrite(Action.CREATE, "Item", key=code, doc=doc))
        if self.dry_run:
            return False
        with self.intent(Kind.ITEM, code):
            self.erp.insert("Item", doc, key={"item_code": code})
        self.state.mark_done(Kind.ITEM, code, code, "")
        with self._cache_lock:
            self._known_items.add(code)
        return True

    def item_lock(self, code: str) -> Any:
        """Held while an Item is checked and created, so two orders never create the same one."""
        return self._item_locks(code)

    # --- customers, addresses, items -------------------------------------------------------------------

    def customer_key(self, order: Order) -> str:
        """The natural key of the order's customer (unique custom field ``amazon_customer_key``): per
        marketplace, per buyer (Amazon's stable anonymised e-mail, else the name), or per order without PII."""
        if self.settings.orders.customer == "marketplace":
            return f"marketplace:{order.marketplace_id}"
        if order.buyer_email:
            return f"buyer:{order.buyer_email.lower()}"
        if order.buyer_name:
            return f"buyer-name:{order.buyer_name}"
        return f"order:{order.amazon_order_id}"

    def _ensure(self, kind: Kind, key: str, doctype: str, doc: dict[str, Any], lookup: Callable[[], str | None],
                insert_key: dict[str, Any], plan: list[PlannedWrite], counter: str) -> tuple[str | None, bool]:
        """A master looked up by its natural key before it is inserted (ledger first, then ERPNext); the
        intent is recorded before the insert so a crash in between is settled by the lookup next time.
        Returns the ERPNext name (None in a dry run when it would be created) and whether this call created it
        (its own insert answered: not found after a refusal or a lost answer)."""
        entry = self.state.get(kind, key)
        if entry is not None and entry.status == Status.DONE and entry.erp_name:
            return entry.erp_name, False
        found = lookup()
        if found is not None:
            self.settle(kind, key, found, record=True)
            return found, False
        plan.append(PlannedWrite(Action.CREATE, doctype, key=str(doc.get("customer_name") or ""), doc=doc))
        if self.dry_run:
            return None, False
        created = True
        with self.intent(kind, key):
            try:
                name = str(self.erp.insert(doctype, doc, key=insert_key)["name"])
            except ErpNextDuplicateError:
                # created after our lookup (a late commit of an earlier attempt): use it, never a second one
                again = lookup()
                if again is None:
                    raise
                name, created = again, False
        self.state.mark_done(kind, key, name, "")
        self.rt.counts.add(counter)
        return name, created

    def prefetch_customers(self, orders: Sequence[Order]) -> None:
        """The customers of a page of orders with one list query by ``amazon_customer_key`` (and one by name
        for keys without a buyer, as customers made by the Frappe connector carry no key), instead of one or
        two lookups per order. Keys the ledger knows are not asked; the page before's answers are dropped."""
        names: dict[str, str] = {}  # key -> customer_name, for the keys ERPNext must be asked about
        for order in orders:
            key = self.customer_key(order)
            if key in names:
                continue
            entry = self.state.get(Kind.CUSTOMER, key)
            if entry is not None and entry.status == Status.DONE and entry.erp_name:
                continue
            names[key] = str(mapping.order_to_customer(order, self.ctx)["customer_name"])
        found: dict[str, str | None] = dict.fromkeys(names)
        if names:
            for row in self.erp.list("Customer", fields=["name", "amazon_customer_key"],
                                     filters=[["amazon_customer_key", "in", sorted(names)]]):
                found[str(row["amazon_customer_key"])] = str(row["name"])
            by_name = {names[k]: k for k, v in found.items() if v is None and not k.startswith("buyer")}
            if by_name:
                # first by name, as ``find`` answers it
                for row in self.erp.list("Customer", fields=["name", "customer_name"],
                                         filters=[["customer_name", "in", sorted(by_name)]]):
                    k = by_name.get(str(row["customer_name"]))
                    if k is not None and found[k] is None:
                        found[k] = str(row["name"])
        with self._cache_lock:
            self._customers = found

    def _prefetched_customer(self, key: str) -> tuple[bool, str | None]:
        with self._cache_lock:
            if key in self._customers:
                return True, self._customers.pop(key)
        return False, None

    def _customer_doc(self, order: Order) -> tuple[str, dict[str, Any]]:
        doc = dict(mapping.order_to_customer(order, self.ctx))
        key = self.customer_key(order)
        doc["amazon_customer_key"] = key
        return key, doc

    def _lookup_customer(self, key: str, name: str) -> str | None:
        known, prefetched = self._prefetched_customer(key)
        if known:
            return prefetched
        found = self.erp.find("Customer", [["amazon_customer_key", "=", key]], fields=("name",))
        if found is None and not key.startswith("buyer"):
            # customers made by the Frappe connector carry no key, only the same name
            found = self.erp.find("Customer", [["customer_name", "=", name]], fields=("name",))
        return None if found is None else str(found["name"])

    def _ensure_customer(self, key: str, doc: dict[str, Any], plan: list[PlannedWrite]) -> str:
        """Under the customer's lock: the ledger, the lookup, else one insert (``_ensure``)."""
        name = str(doc["customer_name"])
        created_name, created = self._ensure(Kind.CUSTOMER, key, "Customer", doc,
                                             lambda: self._lookup_customer(key, name),
                                             {"amazon_customer_key": key}, plan, "customers created")
        if created and created_name is not None:
            with self._cache_lock:
                self._fresh_customers.add(created_name)
        return created_name or name

    def ensure_customer(self, order: Order, plan: list[PlannedWrite]) -> str:
        key, doc = self._customer_doc(order)
        with self._customer_locks(key):
            return self._ensure_customer(key, doc, plan)

    def customer_to_create(self, order: Order) -> NewBuyer | None:
        """The batched path: the order's customer when it must be created (neither the ledger nor ERPNext
        knows it; it is then written with its page's other new buyers by ``create_new_buyers``), else None
        (found ones are settled in the ledger, so ``ensure_customer`` answers them without a request)."""
        key, doc = self._customer_doc(order)
        entry = self.state.get(Kind.CUSTOMER, key)
        if entry is not None and entry.status == Status.DONE and entry.erp_name:
            return None
        with self._customer_locks(key):
            found = self._lookup_customer(key, str(doc["customer_name"]))
            if found is not None:
                self.settle(Kind.CUSTOMER, key, found, record=True)
                return None
        return NewBuyer(key, doc)

    # --- new buyers in batches ---------------------------------------------------------------------------

    def create_new_buyers(self, orders: Sequence[tuple[Order, NewBuyer]]) -> list[BuyerMasters | Amz2ErpError]:
        """The Customers of a batch's new buyers with one ``insert_many`` call, then their Addresses with one
        more; answers, per order, its customer and address names or the error that stops that order alone.

        Every intent is in the ledger before its call. A refused call (one transaction: nothing of it is kept)
        is split in halves until the bad document is alone, which then goes through the single path (lookup,
        insert, its own reason). A lost answer is resolved by lookup: customers by their unique key (the
        client's ``insert_many(key_field=...)``), addresses by their key among those linked to the new
        customer (a customer created in this run has no address amz2erp did not write) — found ones are used,
        missing ones sent again, never blindly. All locks of a batch are taken in key order, so two batches
        with the same buyer never both create it."""
        keys = sorted({nb.key for _, nb in orders})
        customers: dict[str, str | Amz2ErpError] = {}
        with ExitStack() as stack:
            for key in keys:
                stack.enter_context(self._customer_locks(key))
            todo: dict[str, dict[str, Any]] = {}
            for _, nb in orders:
                entry = self.state.get(Kind.CUSTOMER, nb.key)
                if entry is not None and entry.status == Status.DONE and entry.erp_name:
                    customers[nb.key] = entry.erp_name  # an earlier batch of this run made it
                elif nb.key not in todo:
                    todo[nb.key] = nb.doc
            for key in todo:
                self.state.mark_writing(Kind.CUSTOMER, key, "")
            self._insert_customers(list(todo.items()), customers)
        addresses: dict[int, str | Amz2ErpError | None] = {}
        wanted: dict[str, dict[str, Any]] = {}
        by_order: dict[int, str] = {}
        for i, (order, nb) in enumerate(orders):
            customer = customers[nb.key]
            if isinstance(customer, Amz2ErpError):
                continue
            doc = mapping.order_to_address(order, customer, self.ctx)
            if doc is None:
                addresses[i] = None
                continue
            key = mapping.address_key(doc)
            by_order[i] = key
            wanted.setdefault(key, doc)
        found: dict[str, str | Amz2ErpError] = {}
        with ExitStack() as stack:
            for key in sorted(wanted):
                stack.enter_context(self._customer_locks(f"address:{key}"))
            todo = {}
            for key, doc in wanted.items():
                entry = self.state.get(Kind.ADDRESS, key)
                if entry is not None and entry.status == Status.DONE and entry.erp_name:
                    found[key] = entry.erp_name
                else:
                    todo[key] = doc
            for key in todo:
                self.state.mark_writing(Kind.ADDRESS, key, "")
            self._insert_addresses(list(todo.items()), found)
        for i, key in by_order.items():
            addresses[i] = found[key]
        out: list[BuyerMasters | Amz2ErpError] = []
        for i, (_, nb) in enumerate(orders):
            customer = customers[nb.key]
            address = addresses.get(i)
            if isinstance(customer, Amz2ErpError):
                out.append(customer)
            elif isinstance(address, Amz2ErpError):
                out.append(address)
            else:
                out.append(BuyerMasters(customer, address))
        return out

    def _insert_customers(self, batch: list[tuple[str, dict[str, Any]]],
                          results: dict[str, str | Amz2ErpError]) -> None:
        if not batch:
            return
        if len(batch) == 1:
            key, doc = batch[0]
            try:
                results[key] = self._ensure_customer(key, doc, [])
            except (RemoteAuthError, RemoteUnavailableError, ErpNextConfigError):
                raise  # fatal for the run: the intents stay "writing" for the next run's lookup
            except Amz2ErpError as exc:
                results[key] = exc
            return
        try:
            names = self.erp.insert_many("Customer", [doc for _, doc in batch], key_field="amazon_customer_key")
        except (RemoteAuthError, RemoteUnavailableError, ErpNextConfigError):
            raise
        except ErpNextConflictError as exc:
            # a lost answer after which only part of the call exists: each resolved by its own lookup
            log.info("insert_many of %d Customers: %s", len(batch), exc)
            for item in batch:
                self._insert_customers([item], results)
            return
        except Amz2ErpError as exc:
            log.debug("insert_many of %d Customers refused (%s); splitting", len(batch), exc)
            self.rt.counts.add("customer batches split")
            half = len(batch) // 2
            self._insert_customers(batch[:half], results)
            self._insert_customers(batch[half:], results)
            return
        for (key, _), name in zip(batch, names, strict=True):
            self.state.mark_done(Kind.CUSTOMER, key, name, "")
            self.rt.counts.add("customers created")
            results[key] = name
        with self._cache_lock:
            self._fresh_customers.update(names)

    def _insert_addresses(self, batch: list[tuple[str, dict[str, Any]]],
                          results: dict[str, str | Amz2ErpError]) -> None:
        if not batch:
            return
        if len(batch) == 1:
            key, doc = batch[0]
            try:
                results[key] = self._ensure_address(key, doc, [], fresh=True) or ""
            except (RemoteAuthError, RemoteUnavailableError, ErpNextConfigError):
                raise
            except Amz2ErpError as exc:
                results[key] = exc
            return
        attempt = 0
        while True:
            try:
                names = self.erp.insert_many("Address", [doc for _, doc in batch])
                break
            except ErpNextUnavailableError as exc:
                # the answer was lost (or never came): the call is one transaction, so all or none exist
                found = [self._linked_address(key, doc) for key, doc in batch]
                if all(f is not None for f in found):
                    log.info("insert_many of %d Addresses had been applied despite: %s", len(batch), exc)
                    names = [str(f) for f in found]
                    break
                if any(f is not None for f in found):
                    for item in batch:
                        self._insert_addresses([item], results)
                    return
                if attempt >= LOST_BATCH_RESENDS:
                    raise
                attempt += 1
                log.info("insert_many of %d Addresses: %s; not written (looked up), sending it again",
                         len(batch), exc)
            except (RemoteAuthError, RemoteUnavailableError, ErpNextConfigError):
                raise
            except Amz2ErpError as exc:
                log.debug("insert_many of %d Addresses refused (%s); splitting", len(batch), exc)
                self.rt.counts.add("address batches split")
                half = len(batch) // 2
                self._insert_addresses(batch[:half], results)
                self._insert_addresses(batch[half:], results)
                return
        for (key, _), name in zip(batch, names, strict=True):
            self.state.mark_done(Kind.ADDRESS, key, name, "")
            self.rt.counts.add("addresses created")
            results[key] = name

    def _linked_address(self, key: str, doc: dict[str, Any]) -> str | None:
        """The Address with this key linked to its (new) customer, if it exists."""
        filters: list[list[Any]] = [[field, "=", doc.get(field)] for field in ("address_title", "address_type")]
        for link in doc.get("links") or ():
            filters.append(["Dynamic Link", "link_name", "=", link.get("link_name")])
        for row in self.erp.list("Address", fields=list(_ADDRESS_FIELDS), filters=filters):
            if mapping.address_key(dict(row, links=doc.get("links", []))) == key:
                return str(row["name"])
        return None

    def ensure_address(self, order: Order, customer: str, plan: list[PlannedWrite]) -> str | None:
        doc = mapping.order_to_address(order, customer, self.ctx)
        if doc is None:
            return None
        key = mapping.address_key(doc)
        with self._cache_lock:
            fresh = customer in self._fresh_customers
        with self._customer_locks(f"address:{key}"):
            return self._ensure_address(key, doc, plan, fresh=fresh)

    def _ensure_address(self, key: str, doc: dict[str, Any], plan: list[PlannedWrite], *, fresh: bool) -> str | None:
        natural = {"address_title": doc.get("address_title"), "address_type": doc.get("address_type")}

        def lookup() -> str | None:
            if fresh:
                # the key holds the customer link, and the customer did not exist before this run's insert
                return None
            filters = [[field, "=", value] for field, value in natural.items()]
            for row in self.erp.list("Address", fields=list(_ADDRESS_FIELDS), filters=filters):
                if mapping.address_key(dict(row, links=doc.get("links", []))) == key:
                    return str(row["name"])
            return None

        return self._ensure(Kind.ADDRESS, key, "Address", doc, lookup,
                            dict(natural, pincode=doc.get("pincode"), city=doc.get("city")), plan,
                            "addresses created")[0]

    def item_exists(self, code: str) -> bool:
        with self._cache_lock:
            if code in self._known_items:
                return True
        if self.erp.exists("Item", code):
            self.settle(Kind.ITEM, code, code)
            with self._cache_lock:
                self._known_items.add(code)
            return True
        return False

    def price_list_for(self, currency: str | None, *, create: bool = False) -> str:
        """The selling price list for a currency. The rule (Runtime.currency_price_list): the configured list
        for its own currency, "<list> <CUR>" for any other. ``create`` (sync-products) creates that list;
        without it (orders) a list that does not exist falls back to the configured one."""
        name = self.rt.currency_price_list(currency)
        base = self.settings.defaults.price_list
        if name == base:
            return base
        with self._cache_lock:
            if name in self._price_lists:
                return self._price_lists[name]
        if create:
            if self.erp.ensure(
                    "Price List", name, {"price_list_name": name, "currency": currency, "selling": 1, "enabled": 1}):
                self.rt.counts.add("price lists created")
            chosen = name
        else:
            chosen = name if self.erp.exists("Price List", name) else base
        with self._cache_lock:
            self._price_lists[name] = chosen
        return chosen

    def conversion_rate(self, order: Order) -> Decimal | None:
        currency = mapping.order_currency(order)  # pending orders carry no money: the marketplace's currency
        company_currency = self.ctx.company_currency
        if currency is None or currency == company_currency:
            return None
        day = mapping.marketplace_date(order.purchase_date, order.marketplace_id).isoformat()
        cache_key = (currency, day)
        with self._cache_lock:
            if cache_key in self._rates:
                return self._rates[cache_key]
        found = find_exchange_rate(self.erp, self.settings, currency, company_currency, day)
        rate = None if found is None else found.rate
        if rate is None:
            raise OrderRecordError(
                f"order {order.amazon_order_id}: no exchange rate {currency}→{company_currency} on or before {day}: "
                f"add a Currency Exchange record in ERPNext or [orders.exchange_rates] \"{currency}:{company_currency}\""
            )
        with self._cache_lock:
            self._rates[cache_key] = rate
        return rate

    # --- brands and item groups (sync-products) ----------------------------------------------------------

    def ensure_master(self, doctype: str, name: str, doc: dict[str, Any]) -> bool:
        """A Brand or Item Group the Item refers to, created when missing; False when it cannot be (the Item
        is then written without it)."""
        with self._cache_lock:
            if (doctype, name) in self._found:
                return self._found[(doctype, name)]
        ok = self.erp.exists(doctype, name)
        if not ok and not self.dry_run:
            try:
                self.erp.ensure(doctype, name, doc)
                ok = True
            except Amz2ErpError as exc:
                log.warning("cannot create %s %r: %s", doctype, name, exc)
        with self._cache_lock:
            self._found[(doctype, name)] = ok
        return ok
