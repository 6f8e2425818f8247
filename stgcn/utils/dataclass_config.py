"""Typed mapping <-> frozen dataclass conversion: the one config reader of the package.

:func:`from_dict` reads a plain mapping (a parsed YAML/JSON file, a checkpoint entry) into a dataclass by its
type hints: nested dataclasses, tuples (fixed or variadic), lists, ``X | None`` unions and plain scalars. It
refuses unknown keys listing the valid ones, names the dotted path of a bad value (``model.graph.max_hop``)
and raises a one-line :class:`~stgcn.errors.ConfigError`; the dataclass's ``__post_init__`` then checks the
values themselves. :func:`to_dict` turns a dataclass back into plain YAML/JSON-able data (lists, no tuples).

A nested section's missing keys come from the field's default: when the enclosing field's default is a
dataclass instance (e.g. a model section whose ``num_classes`` is unset by default), that instance, not the
class defaults, supplies the keys the mapping leaves out.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, Union

from stgcn.errors import ConfigError

__all__ = ["from_dict", "to_dict", "check_keys"]

T = TypeVar("T")


def to_dict(obj: Any) -> Any:
    """Plain data (dicts, lists, scalars) that :func:`from_dict` maps back to an equal object."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def check_keys(data: Any, valid: Iterable[str], where: str = "", *, required: Iterable[str] = ()) -> None:
    """Refuse a non-mapping, unknown keys (listing the valid ones) and missing required keys.

    Raises:
        ConfigError: ``"{where}: unknown key 'x'; valid keys are a, b"`` or ``"{where}: missing required key 'y'"``.
    """
    prefix = f"{where}: " if where else ""
    valid = list(valid)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix}expected a mapping with keys {', '.join(valid)}, got {data!r}")
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise ConfigError(f"{prefix}unknown key{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(repr(k) for k in unknown)}; valid keys are {', '.join(valid)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ConfigError(f"{prefix}missing required key{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(repr(k) for k in missing)}")


def from_dict(cls: type[T], data: Any, where: str = "", *, base: Any = None) -> T:
    """Instantiate dataclass ``cls`` from a mapping, checking keys and types field by field.

    Args:
        cls: A dataclass.
        data: The mapping (an instance of ``cls`` is returned as is).
        where: Dotted path of the mapping in its file, for messages (``""``: the top level).
        base: An instance of ``cls`` whose values fill the keys ``data`` leaves out (default: the field
            defaults).

    Raises:
        ConfigError: one line naming the dotted key and what was expected.
    """
    if isinstance(data, cls):
        return data
    prefix = f"{where}: " if where else ""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    required = [] if base is not None else [
        n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    check_keys(data, fields, where, required=required)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        path = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = _coerce(data[name], hints.get(name, Any), path, _section_default(f, base))
        elif base is not None:
            kwargs[name] = getattr(base, name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # ConfigError is a ValueError
        msg = " ".join(str(e).split())
        if where and msg.startswith(where):
            raise ConfigError(msg) from None
        if where and msg.split(" ", 1)[0].split("[", 1)[0] in fields:  # "max_hop must be ..." -> its dotted path
            raise ConfigError(f"{where}.{msg}") from None
        raise ConfigError(f"{prefix}{msg}") from None


def _section_default(f: dataclasses.Field, base: Any) -> Any:
    """The dataclass instance a nested section's missing keys come from, if any."""
    if base is not None:
        value = getattr(base, f.name)
    elif f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return None
    return value if dataclasses.is_dataclass(value) and not isinstance(value, type) else None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict or tp is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    if tp is Any:
        return "any value"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str, default: Any = None) -> Any:
    """``value`` checked against (and, for tuples and floats, converted to) the annotation ``tp``."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where, default)
            except ConfigError:
                if dataclasses.is_dataclass(arg) and isinstance(value, Mapping):
                    raise  # a mapping for a section: its own, more precise message
        raise bad
    if tp is type(None):
        if value is None:
            return None
        raise bad
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if origin is tuple or origin is list:
        if not isinstance(value, list | tuple):
            raise bad
        args = typing.get_args(tp)
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            items = [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
        else:
            if len(value) != len(args):
                raise bad
            items = [_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise bad
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return from_dict(tp, value, where, base=default if isinstance(default, tp) else None)
        raise bad
    return value  # an annotation this reader does not know: the dataclass validates it
