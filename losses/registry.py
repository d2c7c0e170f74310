"""Name → loss-class map, spec-string parsing and entry-point discovery.

A spec string is `name` or `name:key=value,key=value`; a value is parsed as an int,
a float, true/false, none, or a `+`-separated list of those (`sigma=1+2+4`,
`layers=relu1_1+relu2_1`), and is otherwise kept as a string (`sigma=auto`).
Third-party packages add losses through the `gatys.losses` entry-point group: each
entry point names a module (imported, so its `@register` decorators run) or a class.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

from .base import StyleLoss

ENTRY_POINT_GROUP = "gatys.losses"

_classes: dict[str, type[StyleLoss]] = {}
_aliases: dict[str, str] = {}
_entry_points_loaded = False


def register(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[type], type]:
    """Class decorator: make a StyleLoss subclass available under `name` (and aliases)."""

    def decorate(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, StyleLoss)):
            raise TypeError(f"@register({name!r}) expects a StyleLoss subclass, got {cls!r}")
        for key in (name, *aliases):
            if key in _classes or key in _aliases:
                raise ValueError(f"style loss name {key!r} is already registered")
        cls.name = name
        _classes[name] = cls
        for alias in aliases:
            _aliases[alias] = name
        return cls

    return decorate


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry_point.load()
        if isinstance(loaded, type) and loaded not in _classes.values():
            register(entry_point.name)(loaded)


def resolve(name: str) -> type[StyleLoss]:
    """The class registered under a name or alias; ValueError listing valid names."""
    _load_entry_points()
    key = name.strip().lower()
    key = _aliases.get(key, key)
    if key not in _classes:
        raise ValueError(f"unknown style loss {name!r}; available: {', '.join(available())}")
    return _classes[key]


def available() -> list[str]:
    """The registered loss names, sorted (aliases not included)."""
    _load_entry_points()
    return sorted(_classes)


def aliases_of(name: str) -> list[str]:
    return sorted(alias for alias, target in _aliases.items() if target == name)


def parse_value(text: str) -> Any:
    """'3' → 3, '0.5' → 0.5, 'true' → True, 'none' → None, 'a+b' → ['a', 'b'], else the text."""
    text = text.strip()
    if "+" in text and not _is_number(text):
        return [parse_value(part) for part in text.split("+")]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """'mmd-gaussian:sigma=auto,samples=4096' → ('mmd-gaussian', {'sigma': 'auto', 'samples': 4096})."""
    name, _, rest = spec.partition(":")
    if not name.strip():
        raise ValueError(f"style loss spec {spec!r} has no name")
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"style loss spec {spec!r}: expected key=value, got {item!r}")
        params[key.strip().replace("-", "_")] = parse_value(value)
    return name.strip(), params


def parameters(cls: type[StyleLoss]) -> dict[str, Any]:
    """Constructor parameters and their defaults (weight's default is the class default)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not issubclass(klass, StyleLoss):
            continue
        for param in inspect.signature(klass.__init__).parameters.values():
            if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            found[param.name] = param.default
    found["weight"] = cls.default_weight
    return found


def resolved(spec: str) -> tuple[str, dict[str, Any]]:
    """The registered name (aliases resolved) and every parameter, the spec's or the default."""
    name, given = parse_spec(spec)
    cls = resolve(name)
    return cls.name, {**parameters(cls), **given}


def create(spec: str, **params: Any) -> StyleLoss:
    """Build a loss from a name or spec string; keyword params override the spec's."""
    name, spec_params = parse_spec(spec)
    cls = resolve(name)
    merged = {**spec_params, **params}
    valid = parameters(cls)
    unknown = sorted(set(merged) - set(valid))
    if unknown:
        raise ValueError(
            f"style loss {cls.name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(valid)}"
        )
    return cls(**merged)


@dataclass(frozen=True)
class LossInfo:
    """What `losses.describe` returns: enough to print the registry or build a form."""

    name: str
    aliases: tuple[str, ...]
    doc: str
    parameters: dict[str, Any]
    default_weight: float

    def __str__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.parameters.items())
        alias = f" (alias {', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.name}{alias}: {self.doc}\n    {params}"


def describe(name: str) -> LossInfo:
    cls = resolve(name)
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    return LossInfo(
        name=cls.name,
        aliases=tuple(aliases_of(cls.name)),
        doc=doc[0] if doc else "",
        parameters=parameters(cls),
        default_weight=cls.default_weight,
    )
