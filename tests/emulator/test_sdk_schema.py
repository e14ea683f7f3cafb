"""The checker itself: the samples conform, and every kind of damage is caught where it is."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PureCloudPlatformClientV2.models import QueueConversationEventTopicConversation
from sdk_schema import assert_conforms, check, enum_values, fields, resolve, roundtrip

from platform_samples import SAMPLES

EVENT_MODEL = "QueueConversationEventTopicConversation"
ENVELOPE_KEYS = {"topicName", "version", "eventBody", "metadata"}
AGENT = "$.participants[2]"
AGENT_CALL = f"{AGENT}.calls[0]"


def sample_model(name: str) -> str:
    """Which SDK model a sample file is an instance of, by its name (and, for one, its shape)."""
    if name.startswith("queue_event_"):
        return EVENT_MODEL
    if name.startswith("analytics_request"):
        return "ConversationQuery"
    if name == "analytics_response_finished_agent.json":
        return "AnalyticsConversation"  # one conversation of a response, not a whole response
    return "AnalyticsConversationQueryResponse"


def load(name: str) -> Any:
    data = json.loads((SAMPLES / name).read_text())
    return data["eventBody"] if name.startswith("queue_event_") else data


def sample_names() -> list[str]:
    return sorted(path.name for path in SAMPLES.glob("*.json"))


@pytest.fixture
def acw_event() -> dict[str, Any]:
    return load("queue_event_agent_in_acw.json")


@pytest.fixture
def coded_event() -> dict[str, Any]:
    return load("queue_event_agent_wrapup_applied.json")


# --- the samples conform -------------------------------------------------------------------------


def test_samples_exist() -> None:
    names = sample_names()
    assert any(n.startswith("queue_event_") for n in names)
    assert any(n.startswith("analytics_request") for n in names)
    assert any(n.startswith("analytics_response") for n in names)


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_conforms_to_its_model(name: str) -> None:
    payload = load(name)
    model = sample_model(name)
    assert check(payload, model) == []
    assert roundtrip(payload, model) == []
    assert_conforms(payload, model)


@pytest.mark.parametrize("name", [n for n in sample_names() if n.startswith("queue_event_")])
def test_event_samples_have_the_envelope(name: str) -> None:
    frame = json.loads((SAMPLES / name).read_text())
    assert set(frame) == ENVELOPE_KEYS
    assert frame["version"] == "2"
    assert set(frame["metadata"]) == {"CorrelationId"}
    assert frame["topicName"].startswith("v2.routing.queues.")


def test_a_single_analytics_conversation_also_conforms_inside_a_response() -> None:
    conversation = load("analytics_response_finished_agent.json")
    response = {"conversations": [conversation], "totalHits": 1}
    assert check(response, "AnalyticsConversationQueryResponse") == []
    problems = check(conversation, "AnalyticsConversationQueryResponse")
    assert "$.conversationId: unknown key for AnalyticsConversationQueryResponse" in problems


def test_an_empty_analytics_page_conforms() -> None:
    assert check({}, "AnalyticsConversationQueryResponse") == []
    assert check({"totalHits": 0}, "AnalyticsConversationQueryResponse") == []


# --- resolving models ----------------------------------------------------------------------------


def test_model_may_be_a_class_a_name_or_a_type_string() -> None:
    assert resolve(QueueConversationEventTopicConversation) == EVENT_MODEL
    assert resolve("list[WrapupCode]") == "list[WrapupCode]"
    assert resolve("dict(str, list[WrapupCode])") == "dict(str, list[WrapupCode])"
    with pytest.raises(ValueError, match="NoSuchModel"):
        resolve("NoSuchModel")
    with pytest.raises(ValueError, match="Nope"):
        check([], "list[Nope]")


def test_fields_are_keyed_by_json_name() -> None:
    declared = fields("QueueConversationEventTopicParticipant").by_json
    assert declared["startAcwTime"] == ("start_acw_time", "datetime")
    assert declared["calls"] == ("calls", "list[QueueConversationEventTopicCall]")
    assert "start_acw_time" not in declared


def test_enum_values_come_from_the_generated_setter() -> None:
    assert enum_values("QueueConversationEventTopicAfterCallWork", "state") == (
        "unknown",
        "skipped",
        "pending",
        "complete",
        "notApplicable",
    )
    assert enum_values("QueueConversationEventTopicAfterCallWork", "start_time") is None
    assert "MANDATORY_TIMEOUT" in (enum_values("AcwSettings", "wrapup_prompt") or ())


def test_a_list_model_checks_every_element() -> None:
    codes = [{"id": "a", "name": "Sale"}, {"id": "b", "name": 7}, {"id": "c", "nam": "x"}]
    assert check(codes, "list[WrapupCode]") == [
        "$[1].name: expected str, got int 7",
        "$[2].nam: unknown key for WrapupCode",
    ]
    assert check({"id": "a"}, "list[WrapupCode]") == [
        "$: expected a list of WrapupCode, got object {'id': 'a'}"
    ]


# --- each kind of damage is reported at its path -------------------------------------------------


def test_unknown_key(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["calls"][0]["afterCallWork"]["bogus"] = 1
    assert check(acw_event, EVENT_MODEL) == [
        f"{AGENT_CALL}.afterCallWork.bogus: "
        "unknown key for QueueConversationEventTopicAfterCallWork"
    ]


def test_unknown_key_can_be_tolerated_by_name(acw_event: dict[str, Any]) -> None:
    """Real payloads carry `additionalProperties: {}`; a caller may choose to accept it."""
    acw_event["participants"][0]["additionalProperties"] = {}
    assert check(acw_event, EVENT_MODEL) == [
        "$.participants[0].additionalProperties: unknown key for "
        "QueueConversationEventTopicParticipant"
    ]
    assert check(acw_event, EVENT_MODEL, ignore_keys={"additionalProperties"}) == []


def test_snake_case_attribute_names_are_not_json_keys(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["start_acw_time"] = acw_event["participants"][2]["startAcwTime"]
    assert check(acw_event, EVENT_MODEL) == [
        f"{AGENT}.start_acw_time: unknown key for QueueConversationEventTopicParticipant"
    ]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("wrapupRequired", "true", "expected bool, got str 'true'"),
        ("wrapupRequired", 1, "expected bool, got int 1"),
        ("alertingTimeoutMs", True, "expected int, got bool True"),
        ("alertingTimeoutMs", 8000.5, "expected int, got float 8000.5"),
        ("alertingTimeoutMs", "8000", "expected int, got str '8000'"),
        ("name", 5, "expected str, got int 5"),
        ("attributes", [], "expected an object of str values, got list []"),
        ("calls", {}, "expected a list of QueueConversationEventTopicCall, got object {}"),
        ("wrapup", "x", "expected a QueueConversationEventTopicWrapup object, got str 'x'"),
        ("mediaRoles", ["a", 2], None),
    ],
)
def test_wrong_type(acw_event: dict[str, Any], field: str, value: object, problem: str) -> None:
    acw_event["participants"][2][field] = value
    problems = check(acw_event, EVENT_MODEL)
    if field == "mediaRoles":
        assert problems == [f"{AGENT}.mediaRoles[1]: expected str, got int 2"]
    else:
        assert problems == [f"{AGENT}.{field}: {problem}"]


def test_number_accepts_int_and_float_but_not_bool() -> None:
    conversation = load("analytics_response_finished_agent.json")
    for value in (4, 4.25):
        conversation["mediaStatsMinConversationMos"] = value
        assert check(conversation, "AnalyticsConversation") == []
    conversation["mediaStatsMinConversationMos"] = False
    assert check(conversation, "AnalyticsConversation") == [
        "$.mediaStatsMinConversationMos: expected number, got bool False"
    ]
    conversation["mediaStatsMinConversationMos"] = float("nan")
    assert check(conversation, "AnalyticsConversation") == [
        "$.mediaStatsMinConversationMos: expected a finite number, got nan"
    ]


def test_dict_values_are_checked_with_their_key_in_the_path(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][0]["attributes"] = {"ok": "x", "n": 1, "with space": None}
    assert check(acw_event, EVENT_MODEL) == [
        "$.participants[0].attributes.n: expected str, got int 1",
        "$.participants[0].attributes['with space']: null (the platform omits absent fields), "
        "expected str",
    ]


def test_object_accepts_anything() -> None:
    assert check({"data": {"a": [1, {"b": None}]}}, "SystemMessageSystemMessage") == []


def test_bad_enum(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["calls"][0]["afterCallWork"]["state"] = "foo"
    assert check(acw_event, EVENT_MODEL) == [
        f"{AGENT_CALL}.afterCallWork.state: 'foo' not in enum "
        "['unknown', 'skipped', 'pending', 'complete', 'notApplicable']"
    ]


def test_enum_case_is_strict_unless_told(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["calls"][0]["afterCallWork"]["state"] = "Pending"
    assert check(acw_event, EVENT_MODEL) == [
        f"{AGENT_CALL}.afterCallWork.state: 'Pending' matches enum value ['pending'] "
        "only ignoring case"
    ]
    assert check(acw_event, EVENT_MODEL, strict_case=False) == []


def test_enum_in_a_request_model() -> None:
    query = load("analytics_request.json")
    query["segmentFilters"][1]["predicates"][0]["dimension"] = "wrapupCode"  # it is wrapUpCode
    query["conversationFilters"][0]["predicates"][0]["operator"] = "absent"
    assert check(query, "ConversationQuery") == [
        "$.conversationFilters[0].predicates[0].operator: 'absent' not in enum "
        "['matches', 'exists', 'notExists']",
        "$.segmentFilters[1].predicates[0].dimension: 'wrapupCode' matches enum value "
        "['wrapUpCode'] only ignoring case",
    ]


def test_bad_enum_in_an_analytics_response() -> None:
    response = load("analytics_response.json")
    response["conversations"][0]["participants"][2]["sessions"][0]["segments"][2]["segmentType"] = (
        "afterCallWork"
    )
    problems = check(response, "AnalyticsConversationQueryResponse")
    assert len(problems) == 1
    assert problems[0].startswith(
        "$.conversations[0].participants[2].sessions[0].segments[2].segmentType: "
        "'afterCallWork' not in enum ["
    )


def test_setter_constraints_are_reported() -> None:
    assert check({"idleTokenTimeoutSeconds": 10}, "IdleTokenTimeout") == [
        "$.idleTokenTimeoutSeconds: 10 rejected by IdleTokenTimeout.idle_token_timeout_seconds "
        "setter: Invalid value for `idle_token_timeout_seconds`, must be a value greater than or "
        "equal to `300`"
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2025-06-10T11:58:41Z", None),
        ("2025-06-10T11:58:41.900+00:00", None),
        ("2025-06-10T11:58:41.900123456Z", None),
        ("2025-06-10T11:58:41.900", "is not ISO-8601 date-time with zone"),
        ("2025-06-10 11:58:41.900Z", "is not ISO-8601 date-time with zone"),
        ("2025-06-10", "is not ISO-8601 date-time with zone"),
        ("1749556721900", "is not ISO-8601 date-time with zone"),
        ("2025-13-10T11:58:41.900Z", "is not a valid ISO-8601 date-time with zone"),
        ("2025-06-10T25:58:41.900Z", "is not a valid ISO-8601 date-time with zone"),
    ],
)
def test_datetimes(acw_event: dict[str, Any], value: str, problem: str | None) -> None:
    acw_event["participants"][2]["calls"][0]["afterCallWork"]["startTime"] = value
    problems = check(acw_event, EVENT_MODEL)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert problems[0].startswith(f"{AGENT_CALL}.afterCallWork.startTime: {value!r} {problem}")


def test_a_datetime_must_be_a_string(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["startAcwTime"] = 1749556721900
    assert check(acw_event, EVENT_MODEL) == [
        f"{AGENT}.startAcwTime: expected ISO-8601 date-time with zone string, got int 1749556721900"
    ]


def test_dates() -> None:
    spec_fields = fields("BuScheduleReference").by_json
    assert spec_fields["weekDate"][1] == "date"
    assert check({"weekDate": "2025-06-09"}, "BuScheduleReference") == []
    assert check({"weekDate": "2025-06-09T00:00:00Z"}, "BuScheduleReference") == [
        "$.weekDate: '2025-06-09T00:00:00Z' is not ISO-8601 date"
    ]
    assert check({"weekDate": "2025-02-30"}, "BuScheduleReference")[0].startswith(
        "$.weekDate: '2025-02-30' is not a valid ISO-8601 date"
    )


def test_null_is_reported_unless_allowed(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["endAcwTime"] = None
    assert check(acw_event, EVENT_MODEL) == [
        f"{AGENT}.endAcwTime: null (the platform omits absent fields), expected datetime"
    ]
    assert check(acw_event, EVENT_MODEL, allow_null=True) == []


def test_several_problems_are_all_reported(coded_event: dict[str, Any]) -> None:
    agent = coded_event["participants"][2]
    agent["wrapup"]["durationSeconds"] = "20"
    agent["wrapup"]["code"] = {"id": "x"}
    agent["calls"][0]["state"] = "ended"
    agent["extra"] = True
    assert check(coded_event, EVENT_MODEL) == [
        f"{AGENT}.calls[0].state: 'ended' not in enum "
        "['alerting', 'dialing', 'contacting', 'offering', 'connected', 'disconnected', "
        "'terminated', 'uploading', 'converting', 'transmitting', 'none']",
        f"{AGENT}.wrapup.code: expected str, got object {{'id': 'x'}}",
        f"{AGENT}.wrapup.durationSeconds: expected int, got str '20'",
        f"{AGENT}.extra: unknown key for QueueConversationEventTopicParticipant",
    ]


def test_a_model_must_be_an_object() -> None:
    assert check([], EVENT_MODEL) == [f"$: expected a {EVENT_MODEL} object, got list []"]
    assert check("x", "ErrorBody") == ["$: expected a ErrorBody object, got str 'x'"]


def test_error_body_and_channel_shapes() -> None:
    error = {
        "message": "Not found",
        "code": "not.found",
        "status": 404,
        "messageWithParams": "Not found",
        "messageParams": {},
        "contextId": "0c9d",
        "details": [],
        "errors": [],
    }
    assert check(error, "ErrorBody") == []
    assert check({**error, "status": "404"}, "ErrorBody") == [
        "$.status: expected int, got str '404'"
    ]
    channel = {"connectUri": "ws://127.0.0.1:1/channels/x", "id": "x", "expires": "2025-06-10Z"}
    assert check(channel, "Channel") == [
        "$.expires: '2025-06-10Z' is not ISO-8601 date-time with zone"
    ]


# --- the SDK round trip --------------------------------------------------------------------------


def test_roundtrip_reports_a_dropped_key(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][1]["additionalProperties"] = {}
    assert roundtrip(acw_event, EVENT_MODEL) == [
        "$.participants[1].additionalProperties: dropped by the SDK (not a field of "
        "QueueConversationEventTopicParticipant)"
    ]


def test_roundtrip_reports_an_enum_the_sdk_rewrites(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["calls"][0]["afterCallWork"]["state"] = "waiting"
    assert roundtrip(acw_event, EVENT_MODEL) == [
        f"{AGENT_CALL}.afterCallWork.state: 'waiting' came back as 'outdated_sdk_version'"
    ]


def test_roundtrip_reports_a_type_the_sdk_coerces(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["alertingTimeoutMs"] = "8000"
    assert roundtrip(acw_event, EVENT_MODEL) == [
        f"{AGENT}.alertingTimeoutMs: '8000' came back as 8000"
    ]


def test_roundtrip_reports_what_the_sdk_cannot_parse(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["startAcwTime"] = "not a time"
    problems = roundtrip(acw_event, EVENT_MODEL)
    assert len(problems) == 1
    assert problems[0].startswith("$: the SDK cannot deserialise it as " + EVENT_MODEL)


def test_roundtrip_treats_equal_instants_as_equal(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["startAcwTime"] = "2025-06-10T11:58:41.900+00:00"
    assert roundtrip(acw_event, EVENT_MODEL) == []


def test_assert_conforms_lists_every_problem(acw_event: dict[str, Any]) -> None:
    acw_event["participants"][2]["wrapupRequired"] = "yes"
    acw_event["participants"][2]["x"] = 1
    with pytest.raises(AssertionError) as raised:
        assert_conforms(acw_event, EVENT_MODEL)
    message = str(raised.value)
    assert f"{AGENT}.wrapupRequired: expected bool" in message
    assert f"{AGENT}.x: unknown key" in message


# --- random damage, anywhere in the samples ------------------------------------------------------

WRONG_VALUES: dict[str, list[object]] = {
    "str": [5, True, [], {}],
    "int": ["5", True, 1.5, []],
    "float": ["1.5", False, {}],
    "bool": ["true", 0, None],
    "datetime": ["2025-06-10", "yesterday", 1749556721900, "2025-06-10T11:58:41"],
}


def _leaves(value: Any, spec: str, path: str) -> Iterator[tuple[str, list[Any], str]]:
    """(path, key trail, swagger type) of every scalar in `value`, walking the SDK model."""
    yield from _walk(value, spec, path, [])


def _walk(
    value: Any, spec: str, path: str, trail: list[Any]
) -> Iterator[tuple[str, list[Any], str]]:
    if spec.startswith("list[") and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, spec[5:-1], f"{path}[{index}]", [*trail, index])
    elif spec.startswith("dict(") and isinstance(value, dict):
        item_spec = spec[len("dict(str, ") : -1]
        for key, item in value.items():
            yield from _walk(item, item_spec, f"{path}.{key}", [*trail, key])
    elif isinstance(value, dict) and spec not in ("object",):
        declared = fields(spec).by_json
        for key, item in value.items():
            yield from _walk(item, declared[key][1], f"{path}.{key}", [*trail, key])
    else:
        yield path, trail, spec


def _containers(value: Any, spec: str, path: str) -> Iterator[tuple[str, str]]:
    """(path, model) of every model object in `value`."""
    if spec.startswith("list[") and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _containers(item, spec[5:-1], f"{path}[{index}]")
    elif spec.startswith("dict(") and isinstance(value, dict):
        for key, item in value.items():
            yield from _containers(item, spec[len("dict(str, ") : -1], f"{path}.{key}")
    elif isinstance(value, dict) and spec != "object":
        yield path, spec
        declared = fields(spec).by_json
        for key, item in value.items():
            yield from _containers(item, declared[key][1], f"{path}.{key}")


def _set(payload: Any, trail: list[Any], value: object) -> None:
    for step in trail[:-1]:
        payload = payload[step]
    payload[trail[-1]] = value


def _get(payload: Any, trail: list[Any]) -> Any:
    for step in trail:
        payload = payload[step]
    return payload


def _damageable_leaves() -> list[tuple[str, str, list[Any], str]]:
    leaves = []
    for name in sample_names():
        for path, trail, spec in _leaves(load(name), sample_model(name), "$"):
            if spec in WRONG_VALUES:
                leaves.append((name, path, trail, spec))
    return leaves


def _nested_models() -> list[tuple[str, str, list[Any], str]]:
    found = []
    for name in sample_names():
        payload = load(name)
        for path, model in _containers(payload, sample_model(name), "$"):
            found.append((name, path, _trail_of(path), model))
    return found


def _trail_of(path: str) -> list[Any]:
    trail: list[Any] = []
    for part in path[1:].replace("[", ".[").split("."):
        if part.startswith("["):
            trail.append(int(part[1:-1]))
        elif part:
            trail.append(part)
    return trail


DAMAGEABLE = _damageable_leaves()
NESTED = _nested_models()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_fuzz_tables_cover_the_samples() -> None:
    assert len(DAMAGEABLE) > 200
    assert {spec for *_, spec in DAMAGEABLE} == set(WRONG_VALUES) - {"float"}  # none in samples
    assert {model for *_, model in NESTED} >= {
        EVENT_MODEL,
        "QueueConversationEventTopicAfterCallWork",
        "QueueConversationEventTopicWrapup",
        "AnalyticsConversationSegment",
        "SegmentDetailQueryPredicate",
    }


@FUZZ
@given(leaf=st.sampled_from(DAMAGEABLE), data=st.data())
def test_any_scalar_of_the_wrong_type_is_reported_at_its_path(
    leaf: tuple[str, str, list[Any], str], data: st.DataObject
) -> None:
    name, path, trail, spec = leaf
    wrong = data.draw(st.sampled_from(WRONG_VALUES[spec]))
    payload = copy.deepcopy(load(name))
    _set(payload, trail, wrong)
    problems = check(payload, sample_model(name))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: ")


@FUZZ
@given(where=st.sampled_from(NESTED), key=st.text(min_size=1, max_size=12))
def test_any_unknown_key_is_reported_at_its_path(
    where: tuple[str, str, list[Any], str], key: str
) -> None:
    name, path, trail, model = where
    payload = copy.deepcopy(load(name))
    target = _get(payload, trail)
    if key in fields(model).by_json or key in target:
        return
    target[key] = "surprise"
    problems = check(payload, sample_model(name))
    assert len(problems) == 1, problems
    assert problems[0].endswith(f"unknown key for {model}")
    assert problems[0].startswith(path)


@FUZZ
@given(leaf=st.sampled_from([leaf for leaf in DAMAGEABLE if leaf[3] == "str"]))
def test_any_enum_value_replaced_by_nonsense_is_reported(
    leaf: tuple[str, str, list[Any], str],
) -> None:
    name, path, trail, _ = leaf
    payload = copy.deepcopy(load(name))
    original = _get(payload, trail)
    _set(payload, trail, "zz-not-a-value")
    problems = check(payload, sample_model(name))
    if _is_enum(trail, sample_model(name)):
        assert problems == [
            f"{path}: 'zz-not-a-value' not in enum " + problems[0].split("enum ")[1]
        ]
    else:
        assert problems == [], (original, problems)


def _is_enum(trail: list[Any], spec: str) -> bool:
    """Whether the string at `trail` is an attribute whose setter declares allowed values."""
    parent = _parent_model(trail, spec)
    if parent is None:
        return False
    attr = fields(parent).by_json[trail[-1]][0]
    return enum_values(parent, attr) is not None


def _parent_model(trail: list[Any], spec: str) -> str | None:
    model = spec
    for step in trail[:-1]:
        if isinstance(step, int):
            model = model[5:-1]
        elif model.startswith("dict("):
            return None
        else:
            model = fields(model).by_json[step][1]
    return None if model.startswith(("list[", "dict(")) else model
