"""Query regexes: JS syntax, MongoDB (PCRE) matching, one meaning in Python and PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acs.query_regex import MAX_WEIGHT, RegexError, compile_regex, wildcard_source


@pytest.mark.parametrize(
    ("pattern", "flags", "text", "expected"),
    [
        # '.' stops at \n only (PCRE), unless the s flag is given
        ("a.c", "", "a\rc", True),
        ("a.c", "", "a\nc", False),
        ("a.c", "s", "a\nc", True),
        # '$' also matches before a final newline; '^' only at the start without m
        ("abc$", "", "abc\n", True),
        ("abc$", "", "abc\nd", False),
        ("^b", "", "a\nb", False),
        ("^b", "m", "a\nb", True),
        ("a$", "m", "a\nb", True),
        # \d \w \s \b are ASCII, as in MongoDB
        (r"^\d$", "", "\u0661", False),
        (r"^\w$", "", "é", False),
        (r"^\s$", "", "\u00a0", False),
        (r"\bb", "", "éb", True),
        (r"[\d-z]", "", "-", True),
        # i folds by Unicode simple case folding, on letters and ranges, not on \w
        ("straße", "i", "STRAẞE", True),
        ("s", "i", "\u017f", True),
        ("k", "i", "\u212a", True),
        ("[a-c]", "i", "B", True),
        ("[^a]", "i", "A", False),
        (r"\w", "i", "\u212a", False),
        ("são", "i", "SÃO PAULO", True),
        # x ignores whitespace and comments outside classes
        ("a b # comment\n c", "x", "abc", True),
        ("[ ]", "x", " ", True),
        # JS leniencies: lone braces and brackets are literal; lazy quantifiers match alike
        ("a{,2}", "", "a{,2}", True),
        ("a]", "", "a]", True),
        ("a+?b", "", "aaab", True),
        (r"\/\.", "", "/.", True),
        (r"\u00e9\x41", "", "éA", True),
        (r"\uD83D\uDE00", "", "😀", True),
        # lookahead is kept
        ("a(?=b)", "", "ab", True),
        ("a(?!b)", "", "ab", False),
        ("", "", "anything", True),
    ],
)
def test_patterns_match_as_mongodb_would(
    pattern: str, flags: str, text: str, expected: bool
) -> None:
    assert compile_regex(pattern, flags).search(text) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(a)\1", "backreferences"),
        ("(?<=a)b", "lookbehind is not supported"),
        ("(?<!a)b", "lookbehind is not supported"),
        ("(?<name>a)", "named groups are not supported"),
        (r"\k<name>", "named backreferences"),
        ("[[:alpha:]]", "POSIX classes"),
        ("[]a]", "'[]' and '[^]'"),
        ("a**", "nothing to repeat"),
        ("*a", "nothing to repeat"),
        ("^*", "an assertion cannot be repeated"),
        ("(?=a)+", "an assertion cannot be repeated"),
        ("a{3,2}", "numbers out of order"),
        ("a{256}", "repetition count above 255"),
        ("(a", "missing ')'"),
        ("a)", "unmatched ')'"),
        ("[a", "missing ']'"),
        ("[z-a]", "range out of order"),
        ("a\\", "ends with a backslash"),
        (r"\p{L}", "unknown escape '\\p'"),
        (r"\xZZ", "2 hex digits"),
        (r"\uD800", "lone surrogate"),
        ("(?i)a", "unknown group syntax"),
        ("(?:a{100}){100}", "too complex"),
        ("(" * 60 + ")" * 60, "nested too deeply"),
        ("a" * 1001, "longer than 1000"),
    ],
)
def test_constructs_the_engines_disagree_on_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(RegexError, match=None) as caught:
        compile_regex(pattern)
    assert message in str(caught.value)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(RegexError, match="unsupported regex option"):
        compile_regex("a", "iu")


def test_equal_patterns_are_equal_values() -> None:
    assert compile_regex("a+", "im") == compile_regex("a+", "mi")
    assert compile_regex("a+", "i") != compile_regex("a+")


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("abc*", "^abc"),
        ("*abc", "abc$"),
        ("a*c", "^a.*c$"),
        ("*", ""),
        ("**a**", "a"),
        # every special is escaped and every inner '*' is a wildcard (GenieACS: only the first)
        ("a.b*c(d)*e", r"^a\.b.*c\(d\).*e$"),
        ("1.2.*", r"^1\.2\."),
    ],
)
def test_wildcards_become_anchored_regexes(text: str, source: str) -> None:
    assert wildcard_source(text) == source
    compile_regex(source)  # and they translate


def test_wildcard_escaping_keeps_specials_literal() -> None:
    regex = compile_regex(wildcard_source("[x]*(y)"))
    assert regex.search("[x] and (y)")
    assert not regex.search("x and y")


# ---------------------------------------------------------------------------------------
# Python and PostgreSQL agree on every pattern the translator accepts.

_ATOMS = st.sampled_from(
    [
        *["a", "b", "A", "é", "\u017f", "k", r"\n", r"\.", ".", r"\d", r"\w", r"\s", r"\W"],
        *[
            r"\S",
            "[ab]",
            "[^a]",
            "[a-c]",
            r"[\d_]",
            "[^\n]",
            r"[\u00e0-\u00ff]",
            "-",
            r"\-",
            " ",
            "1",
        ],
    ]
)
_ASSERTIONS = st.sampled_from(["^", "$", r"\b", r"\B"])
_QUANTIFIERS = st.sampled_from(["*", "+", "?", "{0,2}", "{2}", "{1,}", "*?", "{2,3}?"])


def _patterns() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        group = st.sampled_from(["(", "(?:"]).flatmap(lambda g: inner.map(lambda s: g + s + ")"))
        return st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map("|".join),
            st.tuples(group, _QUANTIFIERS).map("".join),
            st.tuples(_ATOMS, _QUANTIFIERS).map("".join),
            st.tuples(st.sampled_from(["(?=", "(?!"]), inner).map(lambda t: t[0] + t[1] + ")"),
            group,
        )

    return st.recursive(st.one_of(_ATOMS, _ASSERTIONS), extend, max_leaves=8)


_TEXTS = st.lists(
    st.text(alphabet="abAB\n -._1éÉ\u017fKk\u212a", max_size=8), min_size=1, max_size=8
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pattern=_patterns(), flags=st.sets(st.sampled_from("imsx")).map("".join), texts=_TEXTS)
async def test_python_and_postgresql_agree(
    pool: asyncpg.Pool, pattern: str, flags: str, texts: list[str]
) -> None:
    try:
        regex = compile_regex(pattern, flags)
    except RegexError:
        return  # refused before it could reach either engine
    rows = await pool.fetch(
        "SELECT t, t ~ $2 AS m FROM unnest($1::text[]) AS t", texts, regex.postgres
    )
    assert {r["t"]: r["m"] for r in rows} == {t: regex.search(t) for t in texts}


@pytest.mark.parametrize(
    "pattern", ["(?:[^a]{1,60}){1,60}", "(?:(?:ab|cd){1,15}){1,15}", "(?:.{63}){63}"]
)
async def test_postgresql_compiles_patterns_at_the_complexity_limit(
    pool: asyncpg.Pool, pattern: str
) -> None:
    regex = compile_regex(pattern)
    assert await pool.fetchval("SELECT 'abcd' ~ $1", regex.postgres) is regex.search("abcd")
    assert MAX_WEIGHT >= 3600
