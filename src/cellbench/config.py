"""Typed, frozen configurations built from parameter dicts, rejecting what they do not know.

Every method's settings are a frozen dataclass derived from :class:`Config`. ``from_params(params,
path)`` builds one from a mapping (a Kedro parameter section) and fails, before any work, on

* a key the dataclass does not declare (a misspelling such as ``stpes``): the error names the full
  parameter path (``representation.pci.stpes``) and lists the known keys;
* a declared key that is missing: defaults live in one place, ``conf/base``, never in the code;
* a value of the wrong kind (``steps: ten``), naming the path, the value and the expected type.

Field types understood: ``int``, ``float``, ``str``, ``bool``, ``X | None``, ``tuple[X, ...]``,
``dict`` (free-form, kept as a plain dict), ``Mapping[str, X]`` for a ``Config`` subclass ``X``
(a named family of sub-configurations) and nested ``Config`` subclasses. Fields may carry
``metadata={"default": value}`` only for values that are not settings (none in this project).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T", bound="Config")


class ConfigError(ValueError):
    """A parameter that is unknown, missing or of the wrong kind; the message names its full path."""


def _describe(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp, path: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} matches none of "
                          f"{[_describe(a) for a in args]}")
    if isinstance(tp, type) and issubclass(tp, Config):
        return tp.from_params(value, path)
    if origin in (tuple, list) or tp in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        item = args[0] if args and args[0] is not Ellipsis else Any
        if origin is tuple and len(args) > 1 and args[1] is not Ellipsis:  # a fixed-length tuple
            if len(value) != len(args):
                raise ConfigError(f"{path}: expected a list of {len(args)} values, got {value!r}")
            return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        items = [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return items if (origin is list or tp is list) else tuple(items)
    if origin in (dict, Mapping, typing.Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        if args and isinstance(args[1], type) and issubclass(args[1], Config):
            return types.MappingProxyType({str(k): args[1].from_params(v, f"{path}.{k}") for k, v in value.items()})
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (Mapping, list, tuple)) or value is None:
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    raise TypeError(f"{path}: unsupported configuration field type {tp!r}")  # a programming error


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every typed configuration (see the module docstring)."""

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_params(cls: type[T], params: Mapping[str, Any] | T, path: str) -> T:
        """Build from ``params`` (a mapping; an instance is returned as it is), or raise
        :class:`ConfigError` naming ``path.<key>``."""
        if isinstance(params, cls):
            return params
        if not isinstance(params, Mapping):
            raise ConfigError(f"{path}: expected a mapping of {cls.__name__} settings, got {params!r}")
        known = cls.fields()
        unknown = [k for k in params if k not in known]
        if unknown:
            raise ConfigError(f"{path}.{unknown[0]}: unknown parameter"
                              f"{'' if len(unknown) == 1 else f' (and {unknown[1:]})'}; "
                              f"the known keys of {path} are {known}")
        hints = get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in params:
                if "default" in f.metadata:
                    values[f.name] = f.metadata["default"]
                    continue
                raise ConfigError(f"{path}.{f.name}: missing parameter ({_describe(hints[f.name])}); "
                                  f"set it in conf/base")
            values[f.name] = _coerce(params[f.name], hints[f.name], f"{path}.{f.name}")
        obj = cls(**values)
        obj.check(path)
        return obj

    def check(self, path: str) -> None:
        """Range checks of a subclass; raise :class:`ConfigError` naming ``path.<key>``."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists for tuples), e.g. to save beside a model artefact."""
        def plain(v):
            if isinstance(v, Config):
                return v.to_dict()
            if isinstance(v, (tuple, list)):
                return [plain(x) for x in v]
            if isinstance(v, Mapping):
                return {k: plain(x) for k, x in v.items()}
            return v
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self: T, path: str = "override", **changes) -> T:
        """A copy with ``changes`` applied and validated like parameters (unknown keys rejected)."""
        return type(self).from_params({**self.to_dict(), **changes}, path)


def check_arguments(args: Mapping[str, Any], target, path: str, exclude: tuple[str, ...] = (),
                    noun: str = "parameter") -> dict[str, Any]:
    """``args`` checked against ``target`` (a function's signature or a dataclass's fields): a name
    that is not one of them (or is in ``exclude``: a parameter that is data, not a setting), or a
    value whose kind does not match the annotation, is a :class:`ConfigError` naming
    ``path.<name>`` (an unknown name as an unknown ``noun``). Returns the coerced values (lists of a
    tuple field become tuples; a nested dataclass field is checked in turn, as a dict)."""
    import inspect

    if not isinstance(args, Mapping):
        raise ConfigError(f"{path}: expected a mapping of arguments, got {args!r}")
    if dataclasses.is_dataclass(target):
        names = [f.name for f in dataclasses.fields(target)]
    else:
        names = [n for n, p in inspect.signature(target).parameters.items()
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    known = [n for n in names if n not in exclude]
    try:
        hints = get_type_hints(target)
    except Exception:  # an annotation that cannot be resolved is not checked
        hints = {}
    out = {}
    for name, value in args.items():
        if name not in known:
            raise ConfigError(f"{path}.{name}: unknown {noun}; the known keys of {path} are {known}")
        hint = hints.get(name, Any)
        if dataclasses.is_dataclass(hint) and not issubclass(hint, Config):
            out[name] = check_arguments(value or {}, hint, f"{path}.{name}")
            continue
        try:
            out[name] = _coerce(value, hint, f"{path}.{name}")
        except TypeError:  # an annotation this checker does not know: passed as it is
            out[name] = value
    return out


def positive(path: str, **values: float) -> None:
    """Raise :class:`ConfigError` for any value that is not > 0, naming ``path.<key>``."""
    for key, v in values.items():
        if v is None or not v > 0:
            raise ConfigError(f"{path}.{key}: must be > 0, got {v!r}")


def non_negative(path: str, **values: float) -> None:
    for key, v in values.items():
        if v is None or not v >= 0:
            raise ConfigError(f"{path}.{key}: must be >= 0, got {v!r}")


def one_of(path: str, key: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{path}.{key}: {value!r} is not one of {list(allowed)}")
