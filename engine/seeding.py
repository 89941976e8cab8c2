"""Seeded weight initialisation that leaves the process's global random generator as it was."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

T = TypeVar("T")


@contextlib.contextmanager
def fixed_seed(seed: int) -> Iterator[None]:
    """Inside: torch's CPU generator seeded with ``seed``; outside, its state is restored (no global side effect)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def seeded(seed: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: run the function inside :func:`fixed_seed` (modules whose constructors draw random weights)."""

    def wrap(function: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(function)
        def inner(*args, **kwargs) -> T:
            with fixed_seed(seed):
                return function(*args, **kwargs)
        return inner

    return wrap
