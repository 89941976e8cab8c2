"""Progress reports and cancellation, shared by training and stylizing (the bridge forwards both)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units of ``stage`` (UNet batches when stylizing, optimiser steps when training)."""

    stage: str
    done: int
    total: int
    loss: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]
