"""Fast positional constructors for wrapupd's frozen, slotted value types (the frame hot path).

A frozen dataclass's generated ``__init__`` assigns each field through ``object.__setattr__`` (to
get past its own frozen ``__setattr__``): about three times the cost of writing the slots directly,
and on the frame path it is most of the work once msgspec has decoded the JSON. For a class whose
``__init__`` does nothing else — frozen, slotted, every field an ``__init__`` parameter, no
``__post_init__`` — :func:`slot_constructor` builds the same object by writing each slot through
its descriptor, in a function generated the way ``dataclasses`` generates ``__init__``. For any
other class it returns the class itself, so a change to the type costs speed, never correctness.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MemberDescriptorType
from typing import Any, TypeVar, cast

__all__ = ["fast_path_applies", "slot_constructor"]

T = TypeVar("T")


def fast_path_applies(cls: type) -> bool:
    """True when writing the slots is all the class's ``__init__`` would do."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in vars(cls):
        return False
    params = getattr(cls, "__dataclass_params__", None)
    fields = dataclasses.fields(cls)
    return (
        getattr(params, "frozen", False)
        and not hasattr(cls, "__post_init__")
        and all(f.init for f in fields)
        and all(isinstance(vars(cls).get(f.name), MemberDescriptorType) for f in fields)
    )


def slot_constructor(cls: type[T]) -> Callable[..., T]:
    """A function taking every field positionally, in declaration order, and returning a ``cls``."""
    if not fast_path_applies(cls):
        return cls
    names = [f.name for f in dataclasses.fields(cast(Any, cls))]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{n}": vars(cls)[n].__set__ for n in names})
    body = "".join(f"    _set_{n}(obj, {n})\n" for n in names)
    source = f"def build({', '.join(names)}):\n    obj = _new(_cls)\n{body}    return obj\n"
    exec(source, namespace)  # the technique dataclasses itself uses for __init__
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = f"slot_constructor({cls.__qualname__})"
    return build
