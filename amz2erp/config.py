"""Settings: one pydantic model, loaded from TOML once, validated once, handed to every command.

Lookup order for the file (first hit wins):
  1. ``amz2erp --config PATH``
  2. ``$AMZ2ERP_CONFIG``
  3. ``./amz2erp.toml``
  4. ``$XDG_CONFIG_HOME/amz2erp/config.toml`` (default ``~/.config/amz2erp/config.toml``)

Secrets may come from the environment, which wins over the file: AMZ2ERP_REFRESH_TOKEN, AMZ2ERP_LWA_APP_ID,
AMZ2ERP_LWA_CLIENT_SECRET, AMZ2ERP_ERPNEXT_API_KEY, AMZ2ERP_ERPNEXT_API_SECRET.

Unknown keys are an error (exit 2): a misspelt key would otherwise be silently ignored, which is exactly the
failure mode we hold against ERPNext's REST API.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from amz2erp.amazon import limits
from amz2erp.amazon import marketplaces as mp
from amz2erp.errors import ConfigError
from amz2erp.settlement_config import SettlementsSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

log = logging.getLogger(__name__)

ENV_CONFIG = "AMZ2ERP_CONFIG"
SECRET_ENV = {
    ("amazon", "refresh_token"): "AMZ2ERP_REFRESH_TOKEN",
    ("amazon", "lwa_app_id"): "AMZ2ERP_LWA_APP_ID",
    ("amazon", "lwa_client_secret"): "AMZ2ERP_LWA_CLIENT_SECRET",
    ("erpnext", "api_key"): "AMZ2ERP_ERPNEXT_API_KEY",
    ("erpnext", "api_secret"): "AMZ2ERP_ERPNEXT_API_SECRET",
}


#: keys earlier versions accepted and then ignored: refused with what to do, so an old config is fixed once
#: instead of silently meaning something it does not
RETIRED_KEYS: dict[tuple[str, str], str] = {
    ("amazon", "seller_id"): (
        "is no longer accepted: amz2erp never used it (Amazon identifies the seller by the refresh token in "
        "every call amz2erp makes); delete the line"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmazonSettings(_Section):
    refresh_token: SecretStr
    lwa_app_id: str = Field(min_length=1)
    lwa_client_secret: SecretStr
    region: Literal["na", "eu", "fe"] = "na"
    marketplaces: list[str] = Field(default_factory=lambda: ["US"], min_length=1)
    endpoint: str | None = None  # SP-API base URL override (tests, demo, sandbox)
    lwa_endpoint: str | None = None  # LWA token URL override
    orders_api: Literal["2026-01-01", "v0"] = "2026-01-01"
    pii: bool = False  # ask for buyer name/address (needs Amazon's restricted roles)
    timeout: float = Field(default=30.0, gt=0)
    report_timeout: float = Field(default=120.0, gt=0)  # seconds, downloading one report document
    # seconds before the first status poll of a report just asked for: Amazon needs at least this long, so
    # polling sooner only spends getReport calls (a local simulator that finishes at once: lower it)
    report_poll_initial: float = Field(default=5.0, gt=0, le=600)
    max_retries: int = Field(default=8, ge=0, le=50)
    backoff_ceiling: float = Field(default=120.0, gt=0)  # seconds, the longest single wait between retries
    report_poll_ceiling: float = Field(default=3600.0, gt=0)  # give up on a report after this long

    @field_validator("marketplaces")
    @classmethod
    def _known_marketplaces(cls, value: list[str]) -> list[str]:
        for code in value:
            try:
                mp.resolve(code)
            except KeyError:
                raise ValueError(f"unknown marketplace {code!r} (use a country code such as US or an id)") from None
        return value

    @field_validator("endpoint", "lwa_endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    def resolved_marketplaces(self) -> list[mp.Marketplace]:
        return [mp.resolve(code) for code in self.marketplaces]


class ErpNextSettings(_Section):
    url: str
    api_key: SecretStr
    api_secret: SecretStr
    timeout: float = Field(default=30.0, gt=0)
    verify_tls: bool = True
    workers: int = Field(default=4, ge=1, le=64)
    max_retries: int = Field(default=5, ge=0, le=50)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class DefaultsSettings(_Section):
    company: str
    warehouse: str
    fba_warehouse: str | None = None  # AFN (FBA) orders ship from here; default: `warehouse`
    item_group: str = "Products"
    price_list: str = "Standard Selling"
    customer_group: str = "Individual"
    territory: str = "All Territories"
    customer_type: Literal["Individual", "Company"] = "Individual"
    account_group: str = "Duties and Taxes"
    stock_uom: str = "Nos"


class AccountsSettings(_Section):
    """Account names (without the company abbreviation) for the "Actual" charge rows; `setup` creates them."""

    item_tax: str = "Amazon Item Tax"
    shipping: str = "Amazon Shipping"
    shipping_tax: str = "Amazon Shipping Tax"
    gift_wrap: str = "Amazon Gift Wrap"
    gift_wrap_tax: str = "Amazon Gift Wrap Tax"
    promotion_discount: str = "Amazon Promotion Discount"
    shipping_discount: str = "Amazon Shipping Discount"
    marketplace_facilitator_tax: str = "Amazon Marketplace Facilitator Tax"


class ItemsSettings(_Section):
    code: Literal["sku", "asin"] = "sku"
    map: dict[str, str] = Field(default_factory=dict)  # seller SKU → existing ERPNext item_code
    classification_groups: bool = False  # a child Item Group per Amazon classification
    inactive: Literal["leave", "disable"] = "leave"
    unknown_sku: Literal["create", "placeholder", "fail"] = "create"
    placeholder_item: str = "AMAZON-UNMAPPED"
    is_stock_item: bool = True
    enrich: bool = True  # Catalog Items lookups for brand/image/classification


class OrdersSettings(_Section):
    customer: Literal["buyer", "marketplace"] = "buyer"
    import_pending: bool = False
    submit: bool = True
    cancel_draft: Literal["delete", "cancel"] = "delete"
    marketplace_facilitator_tax: Literal["exclude", "book"] = "exclude"
    total_mismatch: Literal["warn", "error"] = "warn"
    amend_on_drift: bool = False
    exchange_rates: dict[str, Decimal] = Field(default_factory=dict)  # "EUR:USD" = 1.08 (fallback only)
    # Stock for shipped quantities (invoice mode only): a Delivery Note per shipment, or the Sales Invoice's
    # update_stock. "none" leaves stock alone (FBA stock is often kept outside ERPNext).
    deliver: Literal["none", "delivery_note", "invoice"] = "none"
    # FBA returns often come back unsellable: a Credit Note restocks only when asked.
    restock_returns: bool = False

    @field_validator("exchange_rates")
    @classmethod
    def _pairs(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for pair, rate in value.items():
            parts = pair.split(":")
            if len(parts) != 2 or not all(len(p) == 3 and p.isalpha() for p in parts):
                raise ValueError(f"{pair!r}: keys look like \"EUR:USD\"")
            if rate <= 0:
                raise ValueError(f"{pair!r}: rate must be positive")
        return {k.upper(): v for k, v in value.items()}


class SyncSettings(_Section):
    after: date | None = None
    chunk_days: int = Field(default=7, ge=1, le=limits.REPORT_WINDOW.days)  # backfill's default --chunk
    overlap_minutes: int = Field(default=5, ge=0, le=24 * 60)
    mode: Literal["api", "report", "auto"] = "auto"
    auto_report_days: int = Field(default=3, ge=1)  # auto: windows longer than this use the report


class StateSettings(_Section):
    path: Path = Field(default_factory=lambda: default_state_path())

    @field_validator("path", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        return Path(os.path.expanduser(str(value))) if value is not None else value


class Settings(_Section):
    amazon: AmazonSettings
    erpnext: ErpNextSettings
    defaults: DefaultsSettings
    accounts: AccountsSettings = Field(default_factory=AccountsSettings)
    items: ItemsSettings = Field(default_factory=ItemsSettings)
    orders: OrdersSettings = Field(default_factory=OrdersSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    settlements: SettlementsSettings = Field(default_factory=SettlementsSettings)  # sync-settlements

    @model_validator(mode="after")
    def _deliver_needs_invoices(self) -> Settings:
        # Stock leaves with the documents invoice mode writes; summary mode writes none to hang it on.
        if self.orders.deliver != "none" and self.settlements.mode != "invoice":
            raise ValueError(
                f'[orders] deliver = "{self.orders.deliver}" needs [settlements] mode = "invoice"'
            )
        return self

    def secret_values(self) -> list[str]:
        """Every secret value, for the log filter that masks them."""
        values = [
            self.amazon.refresh_token.get_secret_value(),
            self.amazon.lwa_client_secret.get_secret_value(),
            self.erpnext.api_key.get_secret_value(),
            self.erpnext.api_secret.get_secret_value(),
        ]
        return [v for v in values if v]


# --- locations -------------------------------------------------------------------------------------------


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "amz2erp" / "config.toml"


def default_state_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "amz2erp" / "state.db"


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use, following the documented lookup order. Raises ConfigError if none exists."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (run `amz2erp init --path {path}`)")
        return path
    env = os.environ.get(ENV_CONFIG)
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"${ENV_CONFIG} points to {path}, which does not exist")
        return path
    for candidate in (Path("amz2erp.toml"), default_config_path()):
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no config file found (looked for --config, ${ENV_CONFIG}, ./amz2erp.toml, {default_config_path()}); "
        "run `amz2erp init` to write one"
    )


# --- loading ---------------------------------------------------------------------------------------------


def _format_validation_error(path: Path, exc: ValidationError) -> str:
    """One line per problem, naming the section and key, never the value (it may be a secret)."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if len(loc) >= 2:
            where = f"[{loc[0]}] {'.'.join(loc[1:])}"
        elif loc:
            where = f"[{loc[0]}]" if err["type"] != "extra_forbidden" else f"key {loc[0]!r}"
        else:
            where = "(top level)"
        if err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see config.example.toml)"
        else:
            msg = err["msg"]
        problems.append(f"{where}: {msg}")
    return f"{path}: " + "; ".join(problems)


def _apply_env(data: dict[str, Any]) -> None:
    for (section, key), var in SECRET_ENV.items():
        value = os.environ.get(var)
        if value:
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                continue  # reported by validation
            data[section][key] = value


# The keys whose values are secrets (the app id is not: it identifies the app and is not a credential alone).
# ERPNext's api_key counts: together with the secret it is the login, and it is masked in output like one.
SECRET_KEYS = (("amazon", "refresh_token"), ("amazon", "lwa_client_secret"), ("erpnext", "api_key"),
               ("erpnext", "api_secret"))


def _warn_if_exposed(path: Path, data: dict[str, Any]) -> None:
    holds_secret = any(isinstance(data.get(s), dict) and data[s].get(k) for s, k in SECRET_KEYS)
    if not holds_secret or os.name != "posix":
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s holds secrets but is readable by group or others; run: chmod 600 %s", path, path)


def parse_settings(data: dict[str, Any], *, source: Path) -> Settings:
    """Validate a TOML document (already parsed) plus the environment into Settings."""
    retired = [f"[{section}] {key} {what}" for (section, key), what in RETIRED_KEYS.items()
               if isinstance(data.get(section), dict) and key in data[section]]
    if retired:
        raise ConfigError(f"{source}: " + "; ".join(retired))
    _apply_env(data)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None


def load_settings(explicit: str | os.PathLike[str] | None = None) -> tuple[Settings, Path]:
    path = find_config(explicit)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message carries "(at line N, column M)" and never the value.
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    _warn_if_exposed(path, data)
    return parse_settings(data, source=path.resolve()), path.resolve()


# --- placeholders: template example values still in the config -------------------------------------------


# The keys whose values in the `init` template are examples that cannot work; the defaults
# ("Products", "Standard Selling", ...) are ERPNext's own and may well be right.
PLACEHOLDER_KEYS: tuple[tuple[str, str], ...] = (
    ("amazon", "refresh_token"),
    ("amazon", "lwa_app_id"),
    ("amazon", "lwa_client_secret"),
    ("erpnext", "url"),
    ("erpnext", "api_key"),
    ("erpnext", "api_secret"),
    ("defaults", "company"),
    ("defaults", "warehouse"),
)


@cache
def template_examples() -> dict[tuple[str, str], str]:
    """The example values of PLACEHOLDER_KEYS, read from the template `init` writes (one source of truth)."""
    text = resources.files("amz2erp").joinpath("templates/config.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return {(sec, key): str(data[sec][key]) for sec, key in PLACEHOLDER_KEYS if key in data.get(sec, {})}


def section_placeholders(section: str, values: Any) -> list[str]:
    """The keys of one config section (``values``: its settings model) still holding the template's
    example values, as "[section] key" (never the values)."""
    out: list[str] = []
    for (sec, key), example in template_examples().items():
        if sec != section:
            continue
        value: Any = getattr(values, key, None)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None and str(value).rstrip("/") == example.rstrip("/"):
            out.append(f"[{sec}] {key}")
    return out


def placeholder_keys(settings: Settings) -> list[str]:
    """Every setting still holding the template's example value, as "[section] key"."""
    return [k for sec in ("amazon", "erpnext", "defaults") for k in section_placeholders(sec, getattr(settings, sec))]
