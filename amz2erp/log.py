"""Logging set-up: plain lines (cron-friendly), and a filter that masks every configured secret in every
line whatever logger wrote it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path

MASK = "***"
_SECRET_SAFE_LOGGERS = ("sp_api", "httpx", "httpcore", "urllib3")


class SecretMasker:
    """Replaces known secret values in text: the one masker. The CLI's (`MASKER`) is shared by the log filter,
    the error boundary and both remote clients, which add what they learn (access tokens as they are issued)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        for value in values:
            # Very short values would mask innocent text; real secrets are long.
            if value and len(value) >= 4 and value not in self._secrets:
                self._secrets.append(value)
        self._secrets.sort(key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


MASKER = SecretMasker()


class SecretFilter(logging.Filter):
    def __init__(self, masker: SecretMasker = MASKER) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.masker.mask(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now so the masked text is what gets written.
            record.exc_text = self.masker.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        return True


def setup_logging(verbosity: int = 0, *, quiet: bool = False, log_file: Path | None = None) -> None:
    """Configure the root logger once: stderr (WARNING by default, INFO with -v, DEBUG with -vv)."""
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbosity == 1:
        level = logging.INFO
    elif verbosity >= 2:
        level = logging.DEBUG
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_amz2erp", False):
            root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setLevel(level)
        handler.setFormatter(fmt)
        handler.addFilter(SecretFilter())
        handler._amz2erp = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    # python-amazon-sp-api logs request headers — the access token — at DEBUG: never below INFO.
    for name in _SECRET_SAFE_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, level))
