"""Lazy name -> "module:Class" registries.

An entry holds its target as a string and its metadata as plain data, so listing the registry
(`bench list codecs`) never imports the implementation (and never imports torch). The class is
imported only when `Registry.get` is called. Tests walk every registry and check that each class's
own metadata agrees with what is declared here.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any


class UnknownNameError(KeyError):
    """A name that is not in a registry; the message carries a did-you-mean and the full list."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:ClassName"
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        module_name, _, attr = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr)


class Registry:
    """An ordered set of named entries of one kind ("codec", "metric", "task")."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._prefixes: dict[str, Entry] = {}

    def register(self, name: str, target: str, **meta: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, target, meta)

    def register_prefix(self, prefix: str, target: str, **meta: Any) -> None:
        """A family of names `PREFIX:ARG` (e.g. `files:PATH`, `hear:PATH`) served by one class."""
        self._prefixes[prefix] = Entry(prefix, target, meta)

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def prefix_entries(self) -> list[Entry]:
        return list(self._prefixes.values())

    def entry(self, name: str) -> Entry:
        if name in self._entries:
            return self._entries[name]
        head, sep, _ = name.partition(":")
        if sep and head in self._prefixes:
            return self._prefixes[head]
        raise UnknownNameError(self._unknown_message(name))

    def get(self, name: str) -> Any:
        return self.entry(name).load()

    def __contains__(self, name: str) -> bool:
        try:
            self.entry(name)
        except UnknownNameError:
            return False
        return True

    def _unknown_message(self, name: str) -> str:
        known = self.names() + [f"{p}:..." for p in self._prefixes]
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"Unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(known)}."


def parse_value(text: str) -> Any:
    """'6' -> 6, '0.63' -> 0.63, 'true' -> True, anything else stays a string."""
    low = text.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split `NAME:key=value,key2=value2,flag` into the name and its options.

    `encodec:bandwidth=6` -> ("encodec", {"bandwidth": 6}); `semanticodec:tiny` -> ("semanticodec",
    {"tiny": True}). A bare word is a boolean flag.
    """
    name, sep, rest = spec.strip().partition(":")
    options: dict[str, Any] = {}
    if sep and rest:
        for part in rest.split(","):
            part = part.strip()
            if not part:
                continue
            key, eq, value = part.partition("=")
            options[key.strip()] = parse_value(value.strip()) if eq else True
    return name.strip(), options


def format_spec(name: str, options: dict[str, Any]) -> str:
    """The inverse of `parse_spec`, with options sorted so equal specs print equally."""
    if not options:
        return name
    parts = [k if v is True else f"{k}={v}" for k, v in sorted(options.items())]
    return f"{name}:{','.join(parts)}"
