"""``Registry``: name -> object, the one shape of every registry here (models, protocols, data sources).

Modelled on fvcore's ``Registry``: objects are registered by decorator (or a call), a duplicate name is an
error, and looking up an unknown name raises an error that names the registry and lists what it holds.
Plain python (no torch), so registries can be read without loading the networks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping name -> object, filled by ``register``.

    ``kind`` names the registry in messages ("unknown evaluation protocol 'x'; available: eigen, rside");
    ``error`` is the exception type of a failed lookup (``KeyError``, or ``ValueError`` where an unknown name
    is bad user input). Iteration follows registration order.
    """

    def __init__(self, kind: str, error: type[Exception] = KeyError) -> None:
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """``register(name, obj)`` adds ``obj``; ``@register(name)`` adds the decorated object. Returns it."""
        if obj is not None:
            self._add(name, obj)
            return obj

        def decorator(item: T) -> T:
            self._add(name, item)
            return item

        return decorator

    def unknown_message(self, name: str) -> str:
        """``unknown <kind> '<name>'; available: a, b`` (sorted)."""
        return f"unknown {self.kind} {name!r}; available: {', '.join(sorted(self._entries)) or 'none'}"

    def pop(self, name: str) -> T:
        """Remove and return ``name``'s entry (tests that register temporary entries clean up with it)."""
        return self._entries.pop(name)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(self.unknown_message(name)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, default: T | None = None) -> T | None:
        """The entry, or ``default`` for an unknown name (no error: Mapping's contract)."""
        return self._entries.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"

    def _add(self, name: str, obj: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj
