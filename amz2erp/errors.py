"""The exception tree and the exit codes the CLI boundary maps it to.

Fatal errors stop a run (configuration, authentication, a remote that stays unavailable). Record errors
(one order or listing that ERPNext or the mapping rejects) are caught per record, written to the ledger
and reported; they never stop the other records.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit code amz2erp documents. Their meanings (`meaning`) are the one source of the table in the
    CLI's --help and module docstring; a test holds the README's table to it."""

    OK = 0
    PARTIAL = 1
    CONFIG = 2
    AUTH = 3
    UNAVAILABLE = 4
    INTERNAL = 70  # EX_SOFTWARE
    LOCKED = 75  # EX_TEMPFAIL: cron may simply try later
    INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.PARTIAL: "the run finished, but some records failed (amz2erp status lists them; retried next run)",
    ExitCode.CONFIG: "usage or configuration error",
    ExitCode.AUTH: "Amazon or ERPNext refused the credentials or a permission",
    ExitCode.UNAVAILABLE: "Amazon or ERPNext unavailable after retries",
    ExitCode.INTERNAL: "internal error (a bug: rerun with --traceback and report it)",
    ExitCode.LOCKED: "another amz2erp run holds the lock (cron: try again later)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C, SIGTERM); state is saved, run the same command again",
}


def exit_code_table(indent: str = "  ") -> str:
    """The exit codes as aligned text lines (for --help and docstrings)."""
    return "\n".join(f"{indent}{int(code):<4}{code.meaning}" for code in ExitCode)


class Amz2ErpError(Exception):
    """Base of every error amz2erp raises on purpose. ``str(exc)`` is the one-line message shown."""

    exit_code: ExitCode = ExitCode.CONFIG


class ConfigError(Amz2ErpError):
    exit_code = ExitCode.CONFIG


class UsageError(Amz2ErpError):
    exit_code = ExitCode.CONFIG


class LockHeldError(Amz2ErpError):
    exit_code = ExitCode.LOCKED


class StateError(Amz2ErpError):
    """The state database is unreadable or from a newer amz2erp."""

    exit_code = ExitCode.CONFIG


# --- remote errors -------------------------------------------------------------------------------------


class RemoteError(Amz2ErpError):
    """An error answered by (or on the way to) Amazon or ERPNext."""

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RemoteAuthError(RemoteError):
    exit_code = ExitCode.AUTH


class RemoteUnavailableError(RemoteError):
    """Transport failures, 5xx and throttling that outlived every retry."""

    exit_code = ExitCode.UNAVAILABLE


class RecordError(Amz2ErpError):
    """Something wrong with one record (bad payload, mapping impossible, ERPNext validation).

    Isolated to that record: reported, kept in the ledger, retried next run.
    """

    exit_code = ExitCode.PARTIAL


# Amazon


class AmazonError(RemoteError):
    pass


class AmazonAuthError(AmazonError, RemoteAuthError):
    pass


class AmazonUnavailableError(AmazonError, RemoteUnavailableError):
    pass


class AmazonThrottledError(AmazonUnavailableError):
    """429s that outlived every retry."""


class AmazonBadRequestError(AmazonError):
    """Amazon rejected the request (400/404): a bug or a bad parameter, not worth retrying."""

    exit_code = ExitCode.CONFIG


class AmazonReportError(AmazonError):
    """A report ended FATAL or could not be read."""


class AmazonPayloadError(AmazonError, RecordError):
    """A payload from Amazon that cannot be parsed into our models (one record)."""

    exit_code = ExitCode.PARTIAL


# ERPNext


class ErpNextError(RemoteError):
    """An error answered by ERPNext. ``exc_type`` is Frappe's exception class name when it gave one."""

    def __init__(self, message: str, *, status: int | None = None, exc_type: str | None = None) -> None:
        super().__init__(message, status=status)
        self.exc_type = exc_type


class ErpNextAuthError(ErpNextError, RemoteAuthError):
    pass


class ErpNextConfigError(ErpNextError, ConfigError):
    """What answered at [erpnext] url is not ERPNext's API (a web page, a redirect, plain http on an
    https URL): a configuration mistake to fix, not an outage to wait out."""

    exit_code = ExitCode.CONFIG


class ErpNextUnavailableError(ErpNextError, RemoteUnavailableError):
    pass


class ErpNextNotFoundError(ErpNextError):
    exit_code = ExitCode.PARTIAL


class ErpNextValidationError(ErpNextError, RecordError):
    """417 and friends: ERPNext refused this document (mandatory, link, validation)."""

    exit_code = ExitCode.PARTIAL


class ErpNextDuplicateError(ErpNextValidationError):
    """409 / DuplicateEntryError / UniqueValidationError."""


class ErpNextConflictError(ErpNextValidationError):
    """TimestampMismatchError or a submitted/cancelled document that cannot change."""


class ErpNextNegativeStockError(ErpNextValidationError):
    """NegativeStockError: a Delivery Note or an invoice with update_stock would take the warehouse below zero."""


class ErpNextStockOverReturnError(ErpNextValidationError):
    """StockOverReturnError: a return of more than was invoiced (or is left to return)."""


class ErpNextClosedPeriodError(ErpNextValidationError):
    """ClosedAccountingPeriod: the posting date lies in an Accounting Period closed for this doctype."""


class ErpNextFiscalYearError(ErpNextValidationError):
    """FiscalYearError: no active Fiscal Year holds the posting date (checked on submit only)."""
