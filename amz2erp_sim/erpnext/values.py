"""Frappe's value helpers as the simulator needs them: flt, cint, getdate, amounts in words, hash names."""

from __future__ import annotations

import random
import string
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

_ONES = [
    "",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
]
_TENS = ["", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety"]


def _words_below_1000(n: int) -> str:
    parts = []
    if n >= 100:
        parts.append(f"{_ONES[n // 100]} Hundred")
        n %= 100
        if n:
            parts.append("And")
    if n >= 20:
        parts.append(_TENS[n // 10] + (f" {_ONES[n % 10]}" if n % 10 else ""))
    elif n:
        parts.append(_ONES[n])
    return " ".join(parts)


def number_in_words(n: int) -> str:
    if n == 0:
        return "Zero"
    chunks = []
    for scale, word in ((10**9, "Billion"), (10**6, "Million"), (1000, "Thousand")):
        if n >= scale:
            chunks.append(f"{_words_below_1000(n // scale)} {word}")
            n %= scale
    if n:
        chunks.append(("And " if chunks and n < 100 else "") + _words_below_1000(n))
    return ", ".join(chunks).replace(", And ", " And ")


def money_in_words(amount: float, currency: str, fraction: str = "Cent") -> str:
    cents = int((Decimal(str(amount)).quantize(Decimal("0.01"), ROUND_HALF_EVEN) * 100).to_integral_value())
    main, frac = divmod(abs(cents), 100)
    out = f"{currency} {number_in_words(main)}"
    if frac:
        out += f" and {number_in_words(frac)} {fraction}"
    return out + " only."


def flt(value: Any, precision: int | None = None) -> float:
    try:
        f = float(value or 0)
    except (TypeError, ValueError):
        f = 0.0
    if precision is None:
        return f
    return float(Decimal(repr(f)).quantize(Decimal(1).scaleb(-precision), ROUND_HALF_EVEN))


def cint(value: Any) -> int:
    try:
        return int(float(value or 0))
    except (TypeError, ValueError):
        return 0


def getdate(value: Any) -> date | None:
    if not value:
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def hash_name() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(random.choice(alphabet) for _ in range(10))
