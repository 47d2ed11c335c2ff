"""One registry helper for every family (losses, miners, encoders, heads, pools).

A family creates one :class:`Registry` and exposes its ``create_X`` / ``list_X`` /
``register_X`` as thin aliases. What every family gets the same way:

* ``register(name, factory, **meta)`` (or ``@registry.register(name, **meta)``): names
  are unique; metadata (``kind="proxy"``, ``modality="music"``, a description) is stored
  with the entry and queried with :meth:`Registry.names`, instead of ``issubclass`` tests;
* ``create(name, **kwargs)``: an unknown name raises :class:`UnknownNameError` with
  close-match hints; keyword arguments are checked against the factory's signature
  *before* it is called, and a wrong one raises :class:`BadArgumentsError` listing the
  accepted options and their defaults;
* ``names(**meta)``: sorted names, filtered by metadata;
* ``options(name)``: the factory's keyword options with defaults (``...`` = required).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from crossmodal.errors import CrossmodalError

T = TypeVar("T")


class UnknownNameError(CrossmodalError, KeyError):
    """A name that no registry entry has (the message lists close matches)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class BadArgumentsError(CrossmodalError, TypeError):
    """Keyword arguments a registered factory does not take (or is missing)."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory with its metadata."""

    name: str
    factory: Callable[..., T]
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Named factories of one family (``family`` names it in messages: "loss")."""

    def __init__(self, family: str, *, builtin_modules: Iterable[str] = ()) -> None:
        self.family = family
        self._entries: dict[str, Entry[T]] = {}
        # Modules whose import registers the built-in entries, imported on first lookup
        # (lets a family register lazily without import cycles).
        self._builtin_modules = tuple(builtin_modules)
        self._loaded = not self._builtin_modules

    def register(
        self, name: str, factory: Callable[..., T] | None = None, **meta: Any
    ) -> Callable[..., Any]:
        """Add ``factory`` under ``name``; without ``factory``, a decorator that does."""

        def add(target: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"a {self.family} named {name!r} is already registered")
            self._entries[name] = Entry(name, target, dict(meta))
            return target

        return add if factory is None else add(factory)

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtin_modules:
                importlib.import_module(module)

    def entry(self, name: str) -> Entry[T]:
        """The entry of ``name``; :class:`UnknownNameError` with close matches if none."""
        self._load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), list(self._entries), n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.family} {name!r}.{hint} Registered: {', '.join(self.names())}"
            ) from None

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._entries

    def names(self, **meta: Any) -> list[str]:
        """Registered names, sorted; only entries whose metadata equals every ``meta``."""
        self._load_builtins()
        return sorted(
            n for n, e in self._entries.items() if all(e.meta.get(k) == v for k, v in meta.items())
        )

    def options(self, name: str) -> dict[str, Any]:
        """Keyword options of ``name``'s factory with their defaults (``...`` = required)."""
        params = inspect.signature(self.entry(name).factory).parameters
        return {
            p.name: (... if p.default is inspect.Parameter.empty else p.default)
            for p in params.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }

    def check_arguments(self, name: str, kwargs: dict[str, Any]) -> None:
        """Raise :class:`BadArgumentsError` when ``kwargs`` do not fit ``name``'s factory."""
        signature = inspect.signature(self.entry(name).factory)
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            options = ", ".join(
                k if v is ... else f"{k}={v!r}" for k, v in self.options(name).items()
            )
            unknown = sorted(set(kwargs) - set(self.options(name)))
            # Name the unknown options themselves; TypeError's text names only the first.
            problem = f"no option {', '.join(map(repr, unknown))}" if unknown else str(exc)
            raise BadArgumentsError(
                f"bad arguments for {self.family} {name!r}: {problem}; options: {options or 'none'}"
            ) from None

    def create(self, name: str, /, **kwargs: Any) -> T:
        """Build ``name`` with ``kwargs``, checked against the factory's signature first."""
        self.check_arguments(name, kwargs)
        return self.entry(name).factory(**kwargs)
