"""Typed configs from params sections: the one strictness policy for every frozen config dataclass.

`config_from_dict(cls, d, section)` builds `cls` from a mapping (a params.yaml section or a bundle's JSON
file): every value is cast to its field's annotated type (float, int, str, bool, tuples and lists of
those, dicts, optional values, nested config dataclasses built the same way), a key the dataclass does not
have is an error naming the section and the key, and so is a missing field without a default.
It lives in runtime/ because runtime/ may import only numpy, scipy and onnxruntime (not common/), and
every other package may import runtime/: so training, ingest, mining and deploy use this same function.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

# Keys a params section may still hold that no config models (skipped, not rejected):
SKIPPED_KEYS: frozenset[str] = frozenset()  # keys a section may carry that its config does not model


def _cast(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):  # X | None
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _cast(value, inner, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return config_from_dict(tp, value, where)
    if origin in (tuple, list):
        if isinstance(value, str | bytes) or not isinstance(value, typing.Iterable):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        out = [_cast(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_cast(k, kt, where): _cast(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp in (int, float, str):
        if isinstance(value, bool) or value is None:
            raise ValueError(f"{where}: expected {tp.__name__}, got {value!r}")
        try:
            return tp(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: expected {tp.__name__}, got {value!r}") from exc
    return value


def config_from_dict(cls: type, d: Mapping[str, Any] | None, section: str) -> Any:
    """cls (a dataclass) from mapping d, the params section (or file) named `section` in errors."""
    d = dict(d or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(k for k in d if k not in fields and k not in SKIPPED_KEYS)
    if unknown:
        raise ValueError(f"{section}: unknown key {unknown[0]!r} (known: {', '.join(fields)})")
    missing = [
        name
        for name, f in fields.items()
        if name not in d and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{section}: missing key {missing[0]!r}")
    kwargs = {k: _cast(v, hints[k], f"{section}.{k}") for k, v in d.items() if k in fields}
    return cls(**kwargs)
