"""Numbers typed by a user (knobs, weights, seconds): refused at once when they are not finite numbers."""

from __future__ import annotations

import math

from .errors import SettingsError


def finite_number(value: object, what: str) -> float:
    """``value`` as a float; text that is no number, NaN and infinities are refused in one line naming ``what``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SettingsError(f"{what} must be a number, not '{value}'.") from None
    if not math.isfinite(number):
        raise SettingsError(f"{what} must be a finite number, not {value}.")
    return number
