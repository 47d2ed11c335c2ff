"""Dataclass configs: from/to plain dicts and YAML, with command-line overrides.

A config is a (nested) dataclass of primitives, lists, dicts and other config
dataclasses. ``load_config(cls, yaml_path, overrides)`` builds one from defaults, then a
YAML file, then ``--key value`` pairs where ``key`` is a dotted path (``optim.lr``) or,
when unambiguous, a bare field name (``lr``). Unknown keys and values of the wrong type
are errors that name the key and the accepted choices, never silently ignored.

A config class that renamed fields lists them in ``RENAMED_KEYS`` (old → new name) and
fields it no longer has in ``RETIRED_KEYS`` (name → (former default, why)): files, YAML
and overrides that use the old names still load (:func:`migrate`).
"""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from crossmodal.errors import CrossmodalError

T = TypeVar("T")
log = logging.getLogger(__name__)


class ConfigError(CrossmodalError, ValueError):
    """A config file or override that does not fit the config's fields."""


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict (YAML/JSON-safe) of a config dataclass."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build ``cls`` from ``data``; nested dataclasses from nested dicts; strict keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    data = migrate(cls, data, where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(_join(where, k) for k in unknown)}; "
            f"valid keys{' under ' + where if where else ''}: {', '.join(sorted(fields))}"
        )
    kwargs = {name: _coerce(hints[name], value, _join(where, name)) for name, value in data.items()}
    return cls(**kwargs)


def migrate(cls: type, data: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``data`` with ``cls``'s renamed keys under their new names and its retired keys
    dropped (a warning says why when one was set to other than its former default), in
    nested configs too. A key given under both its old and its new name is an error."""
    data = dict(data)
    for old, new in getattr(cls, "RENAMED_KEYS", {}).items():
        if old in data:
            if new in data:
                raise ConfigError(
                    f"{_join(where, old)} is the former name of {_join(where, new)}: give one"
                )
            data[new] = data.pop(old)
    for name, (former_default, why) in getattr(cls, "RETIRED_KEYS", {}).items():
        if name in data and data.pop(name) != former_default:
            log.warning("ignoring %s: %s", _join(where, name), why)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]) and isinstance(data.get(f.name), dict):
            data[f.name] = migrate(hints[f.name], data[f.name], _join(where, f.name))
    return data


def to_yaml(cfg: Any) -> str:
    """``cfg`` as YAML text that :func:`load_config` reads back (field order kept)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def load_config(
    cls: type[T], yaml_path: str | Path | None = None, overrides: Sequence[str] = ()
) -> T:
    """Defaults ← YAML file ← ``overrides`` (``["--optim.lr", "3e-4", "--epochs=5"]``)."""
    data = to_dict(cls())
    if yaml_path is not None:
        try:
            loaded = yaml.safe_load(Path(yaml_path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read config {yaml_path}: {err}") from err
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {yaml_path} must hold a mapping at the top level")
        _deep_update(data, migrate(cls, loaded))
    for key, value in parse_overrides(overrides):
        path = resolve_key(cls, key)
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = _parse_scalar(value)
    return from_dict(cls, data)


def parse_overrides(args: Sequence[str]) -> list[tuple[str, str]]:
    """``--key value`` / ``--key=value`` pairs; a bare ``--flag`` means ``true``."""
    pairs: list[tuple[str, str]] = []
    i = 0
    args = list(args)
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"expected --key value, got {arg!r}")
        key = arg[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            value = args[i + 1]
            i += 2
        else:
            value = "true"
            i += 1
        pairs.append((key.replace("-", "_"), value))
    return pairs


def field_paths(cls: type) -> list[tuple[str, ...]]:
    """Every leaf field of a config class as a path tuple."""
    paths: list[tuple[str, ...]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            paths.extend((f.name, *sub) for sub in field_paths(hints[f.name]))
        else:
            paths.append((f.name,))
    return paths


def resolve_key(cls: type, key: str) -> tuple[str, ...]:
    """A dotted key, or a bare leaf name that occurs exactly once, as a field path."""
    paths = field_paths(cls)
    wanted = tuple(key.split("."))
    if wanted in paths:
        return wanted
    renamed = _renamed_paths(cls)
    if wanted in renamed:
        return renamed[wanted]
    matches = [p for p in paths if p[-len(wanted) :] == wanted]
    if not matches:
        matches = [new for old, new in renamed.items() if old[-len(wanted) :] == wanted]
    if len(matches) == 1:
        return matches[0]
    if matches:
        options = ", ".join(".".join(p) for p in matches)
        raise ConfigError(f"--{key} is ambiguous; use one of: {options}")
    raise ConfigError(f"unknown option --{key}; options: " + ", ".join(".".join(p) for p in paths))


def _renamed_paths(cls: type) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Former field paths (per ``RENAMED_KEYS``) → today's, for command-line overrides."""
    renamed = {(old,): (new,) for old, new in getattr(cls, "RENAMED_KEYS", {}).items()}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            for old, new in _renamed_paths(hints[f.name]).items():
                renamed[(f.name, *old)] = (f.name, *new)
    return renamed


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _deep_update(base: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and base[key]:
            _deep_update(base[key], value)
        else:
            base[key] = value


def _parse_scalar(text: str) -> Any:
    """Command-line text to a Python value with YAML rules, plus floats such as 1e-3
    (YAML 1.1 reads those as strings)."""
    try:
        return float(text) if _looks_like_float(text) else yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return any(c in text.lower() for c in ".e") and text.lower() not in {"nan", "inf", "-inf"}


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where} must be one of {list(choices)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value
