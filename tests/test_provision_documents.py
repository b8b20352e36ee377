"""Provision documents, path patterns, expressions and presets: what is accepted, what it
means, and how a refusal names the problem. Pure; no I/O."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acs import expr, paths
from acs import provisions as pv

# --- expressions ------------------------------------------------------------------------------


def run(source: str, **variables: object) -> object:
    scope = expr.Scope(variables=variables, param={"A.B": "7"}.get, secret=lambda p: f"s:{p}")
    return expr.evaluate(expr.parse(source), scope)


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("'a' + 1", "a1"),
        ("7 / 2", 3.5),
        ("8 / 2", 4),
        ("-3 % 2", 1),
        ("1 < 2 && 2 < 3", True),
        ("null ?? 'x'", "x"),
        ("'' ?? 'x'", "x"),
        ("true ? 'y' : 'n'", "y"),
        ("not false", True),
        ("substr('ABCDEF', -3)", "DEF"),
        ("substr('ABCDEF', 1, 2)", "BC"),
        ("upper(concat('a', 'b'))", "AB"),
        ("replace('a-b-c', '-', '.')", "a.b.c"),
        ("pad(7, 3)", "007"),
        ("hex(255)", "ff"),
        ("round(num('-123456') / 10000 - 40, 2)", -52.35),
        ("int('42') + 1", 43),
        ("num('x') ?? 0", 0),
        ("param('A.B') == 7", True),
        ("param('missing') ?? 'd'", "d"),
        ("secret('cr')", "s:cr"),
        ("args[1]", "b"),
        ("args[9]", None),
        ("'it\\'s' == \"it's\"", True),
    ],
)
def test_expressions_evaluate(source: str, value: object) -> None:
    assert run(source, args=["a", "b"]) == value


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os')", "unknown function"),
        ("a.b", "unexpected"),
        ("1 +", "unexpected"),
        ("(1", "expected '\\)'"),
        ("nosuch", "unknown name"),
        ("1 / 0", "division by zero"),
        ("'x' * 2", "not a number"),
        ("replace('a', '', 'b')", "non-empty"),
        ("upper()", "arguments"),
        ("(" * 40 + "1" + ")" * 40, "nested deeper"),
        ("replace(" * 6 + "pad('a', 256, 'a')" + ", 'a', 'aaaa')" * 6, "longer than"),
    ],
)
def test_bad_expressions_are_refused_with_a_reason(source: str, message: str) -> None:
    with pytest.raises(expr.ExprError, match=message):
        run(source)


def test_unknown_parameters_are_reported_for_reading() -> None:
    def param(path: str) -> expr.Value:
        raise expr.Unknown([path])

    with pytest.raises(expr.Unknown) as err:
        expr.evaluate(expr.parse("concat(param('X.Y'), 1)"), expr.Scope(param=param))
    assert err.value.paths == ("X.Y",)


def test_templates_interpolate_and_keep_lone_types() -> None:
    scope = expr.Scope(variables={"serial": "SN9", "n": 5})
    assert expr.template("ISP-${serial}-${n + 1}").render(scope) == "ISP-SN9-6"
    assert expr.template("${n}").render(scope) == 5  # a lone expression keeps its type
    assert expr.template("cost $$5 and ${'}'}").render(scope) == "cost $5 and }"
    assert expr.template("plain").constant
    assert expr.template("${param('A.B') ?? first('C.*.D')}").paths() == {"A.B", "C.*.D"}
    with pytest.raises(expr.ExprError, match="unclosed"):
        expr.template("x ${serial")


@given(st.text(max_size=200))
def test_parsing_arbitrary_text_never_crashes(source: str) -> None:
    try:
        node = expr.parse(source)
    except expr.ExprError:
        return
    with contextlib.suppress(expr.ExprError, expr.Unknown):
        expr.evaluate(node, expr.Scope())


# --- path patterns ------------------------------------------------------------------------------


def test_patterns_parse_wildcards_aliases_and_objects() -> None:
    pattern = paths.parse(
        "Device.IP.Interface.[Alias:wan,X_ISP.Role:'a,b'].IPv4Address.*.IPAddress"
    )
    assert pattern.segments[:3] == ("Device", "IP", "Interface")
    assert pattern.segments[3] == paths.Alias((("Alias", "wan"), ("X_ISP.Role", "a,b")))
    assert pattern.segments[5] == paths.Wildcard()
    assert pattern.literal_prefix() == "Device.IP.Interface"
    assert not pattern.object and paths.parse("A.B.").object and paths.parse("A.[K:v].").object
    assert paths.parse("") == paths.Pattern((), True)
    assert (
        str(pattern) == 'Device.IP.Interface.[Alias:wan,X_ISP.Role:"a,b"].IPv4Address.*.IPAddress'
    )


@pytest.mark.parametrize(
    "text", ["A..B", "A.[K]", "A.[K:v", "A.B!", "A.[:v]", "A.[K:'v].B", "A.[K:v]x"]
)
def test_malformed_patterns_are_refused(text: str) -> None:
    with pytest.raises(paths.PathError):
        paths.parse(text)


# --- provision documents --------------------------------------------------------------------------


def test_every_step_kind_parses() -> None:
    steps = pv.parse_provision(
        pv.load_source(
            """
steps:
  - declare: A.B.*.C
    value: "x-${serial}"
    type: xs:string(32)
    refresh: 60
  - declare: A.P.[Name:internet]
    instances: {min: 1, max: 2}
  - value: [A.Interval, 3600, xsd:unsignedInt]
  - refresh: A.Info.
    age: 86400
  - tag: vip
  - untag: trial
  - reboot: 86400
  - factoryReset: 0
  - download: {fileType: 1 Firmware Upgrade Image, fileName: "fw-${args[0]}.bin"}
  - upload: {fileType: 1 Vendor Configuration File, every: 3600}
"""
        )
    )
    kinds = [type(s).__name__ for s in steps]
    assert kinds == [
        "Declare",
        "Declare",
        "Declare",
        "Declare",
        "Tag",
        "Tag",
        "Reboot",
        "FactoryReset",
        "DownloadStep",
        "UploadStep",
    ]
    first = steps[0]
    assert isinstance(first, pv.Declare) and first.type == "xsd:string" and first.value_age == 60
    assert steps[1].instances == (1, 2)  # type: ignore[union-attr]
    refresh = steps[3]
    assert isinstance(refresh, pv.Declare) and refresh.pattern.object and refresh.path_age == 86400


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"oops": 1}, "a provision is a list of steps"),
        (
            [{"declare": "A.B", "value": 1}, {"declare": "A..B"}],
            "step 2 (declare): declare: bad segment",
        ),
        ([{"declare": "A.B", "colour": "red"}], "step 1 (declare): unknown field(s) colour"),
        ([{"declare": "A.B.", "value": 1}], "cannot be declared for an object"),
        ([{"declare": "A.B", "instances": 1}], "wildcard or an alias"),
        ([{"declare": "A.*", "instances": {"min": 3, "max": 1}}], "min <= max"),
        ([{"reboot": -1}], "step 1 (reboot)"),
        ([{"launch": "rocket"}], "unknown step 'launch'"),
        ([{"value": ["A.B"]}], "value takes [path, value]"),
        ([{"download": {"fileType": "1"}}], "needs a fileName"),
        ([{"declare": "A.B", "value": "${1 +}"}], "step 1 (declare): value: in ${...}"),
    ],
)
def test_invalid_documents_name_the_step_and_the_problem(document: object, message: str) -> None:
    with pytest.raises(pv.ProvisionError) as err:
        pv.parse_provision(document)
    assert message in str(err.value)


def test_sources_are_json_or_safe_yaml_only() -> None:
    assert pv.load_source('[{"tag": "x"}]') == [{"tag": "x"}]
    with pytest.raises(pv.ProvisionError):
        pv.load_source("!!python/object/apply:os.system ['true']")
    with pytest.raises(pv.ProvisionError, match="larger than"):
        pv.load_source("x" * (pv.MAX_SOURCE + 1))


# --- presets and virtual parameters ------------------------------------------------------------------


def test_presets_in_both_genieacs_shapes() -> None:
    modern = pv.parse_preset(
        "p",
        {
            "channel": "wifi",
            "weight": 5,
            "events": {"1 BOOT": True, "2 PERIODIC": False},
            "precondition": '{"_tags": "vip"}',
            "provisions": [["wifi", "a", 1]],
        },
    )
    assert modern.provisions == (("wifi", ("a", 1)),)
    assert modern.events_match(frozenset({"1 BOOT"})) and not modern.events_match(
        frozenset({"1 BOOT", "2 PERIODIC"})
    )
    legacy = pv.parse_preset(
        "q",
        {
            "weight": 0,
            "precondition": "{}",
            "configurations": [
                {"type": "value", "name": "A.B", "value": "true"},
                {"type": "add_object", "name": "A.P", "object": "Name:x"},
                {"type": "provision", "name": "other", "args": ["z"]},
            ],
        },
    )
    assert legacy.provisions == (("other", ("z",)),) and len(legacy.steps) == 2
    with pytest.raises(pv.ProvisionError, match="configuration 1 \\(mystery\\)"):
        pv.parse_preset("r", {"configurations": [{"type": "mystery"}]})


def test_schedules_apply_within_their_window() -> None:
    preset = pv.parse_preset("n", {"schedule": {"cron": "0 2 * * *", "duration": 3600}})
    assert preset.schedule is not None
    at = lambda h, mi: datetime(2026, 11, 27, h, mi, tzinfo=UTC).timestamp()  # noqa: E731
    assert preset.schedule.active(at(2, 0)) and preset.schedule.active(at(2, 59))
    assert not preset.schedule.active(at(3, 0)) and not preset.schedule.active(at(1, 59))
    with pytest.raises(pv.ProvisionError, match="duration"):
        pv.parse_preset("n", {"schedule": {"cron": "0 2 * * *", "duration": 0}})


def test_virtual_parameters_and_their_cycles() -> None:
    wan = pv.parse_virtual_parameter("WanIp", {"first": ["A.*.IP", "B.IP"]})
    assert wan.inputs == {"A.*.IP", "B.IP"} and wan.path == "VirtualParameters.WanIp"
    a = pv.parse_virtual_parameter("A", {"value": "${param('VirtualParameters.B')}"})
    b = pv.parse_virtual_parameter("B", {"value": "${param('VirtualParameters.C') ?? 1}"})
    c = pv.parse_virtual_parameter("C", {"value": "${param('VirtualParameters.A')}"})
    pv.check_cycles({"A": a, "B": b})
    with pytest.raises(pv.ProvisionError, match="A -> B -> C -> A"):
        pv.check_cycles({"A": a, "B": b, "C": c})
    with pytest.raises(pv.ProvisionError, match="no dots"):
        pv.parse_virtual_parameter("A.B", {"first": ["X"]})
