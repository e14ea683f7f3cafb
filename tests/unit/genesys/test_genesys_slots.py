"""The frame path's fast constructors build exactly what the value types' own ``__init__`` builds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from wrapupd.events import Communication, Participant
from wrapupd.genesys.slots import fast_path_applies, slot_constructor

CALL = {
    "id": "c1",
    "media_type": "call",
    "state": "connected",
    "acw_state": "pending",
    "wrapup_code": None,
}


def participant_fields() -> dict[str, object]:
    return {
        "id": "p1",
        "purpose": "agent",
        "user_id": "u1",
        "queue_id": "q1",
        "start_acw_time": datetime(2025, 6, 10, 11, 58, tzinfo=UTC),
        "end_acw_time": None,
        "wrapup_code": "ININ-WRAP-UP-TIMEOUT",
        "wrapup_prompt": "optional",
        "wrapup_timeout_ms": 120000,
        "communications": (Communication(**CALL),),  # type: ignore[arg-type]
    }


@pytest.mark.parametrize(
    ("cls", "fields"), [(Participant, participant_fields()), (Communication, CALL)]
)
def test_the_fast_path_serves_the_frame_types_and_builds_equal_frozen_objects(
    cls: type, fields: dict[str, object]
) -> None:
    assert fast_path_applies(cls), (
        f"{cls.__name__} changed: the frame path lost its fast constructor"
    )
    build = slot_constructor(cls)
    built, expected = build(**fields), cls(**fields)
    assert type(built) is cls and built == expected and hash(built) == hash(expected)
    assert build(*fields.values()) == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.id = "other"
    with pytest.raises(TypeError):
        build(**{k: v for k, v in fields.items() if k != "id"})


@dataclasses.dataclass(frozen=True, slots=True)
class Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


@dataclasses.dataclass(frozen=True)
class Unslotted:
    value: int


@dataclasses.dataclass(slots=True)
class Mutable:
    value: int


@dataclasses.dataclass(frozen=True, slots=True)
class WithDerived:
    value: int
    derived: int = dataclasses.field(init=False, default=0)


@pytest.mark.parametrize("cls", [Checked, Unslotted, Mutable, WithDerived])
def test_any_other_class_is_built_by_its_own_init(cls: type) -> None:
    assert not fast_path_applies(cls)
    assert slot_constructor(cls) is cls
