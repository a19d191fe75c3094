"""Property tests: checking any payload against any row of the topic table never raises,
and what it lets through is what the table says (and what strict JSON can carry)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services import topics as t
from services.text import clean, shown, value_problem

from .strategies import any_text, data_for, good_value, values


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_check_payload_never_raises_and_what_passes_fits_the_table(data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(t.TABLE))
    payload = data.draw(data_for(spec))
    problems = t.check_payload(spec, payload)
    assert all(isinstance(p, str) and len(p) < 500 for p in problems)
    "; ".join(problems).encode("utf-8")  # a problem can always be logged and sent back
    if problems:
        return
    assert isinstance(payload, dict)
    for name, kinds in spec.fields.items():
        if name in payload:
            assert isinstance(payload[name], kinds) and not isinstance(payload[name], bool)
            if name in spec.values:
                assert payload[name] in spec.values[name]
        else:
            assert name in spec.optional
    json.dumps(payload, allow_nan=False).encode("utf-8")  # strict JSON, UTF-8: sendable


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_what_the_table_allows_passes(data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(t.TABLE))
    payload = {name: data.draw(good_value(spec, name)) for name in spec.fields
               if name not in spec.optional or data.draw(st.booleans())}
    assert t.check_payload(spec, payload) == []


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_value_problem_finds_exactly_what_strict_json_refuses(value: Any) -> None:
    problem = value_problem(value)
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
        float_ok = all(math.isfinite(float(n)) for n in _numbers(value))
    except (ValueError, OverflowError):  # UnicodeEncodeError is a ValueError
        float_ok = False
    assert (problem is None) == float_ok, (value, problem)


def _numbers(value: Any) -> list[int | float]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(k) + _numbers(v)]
    return [n for item in value for n in _numbers(item)]


@settings(max_examples=300, deadline=None)
@given(value=values, limit=st.integers(min_value=1, max_value=200))
def test_shown_and_clean_are_short_and_encodable(value: Any, limit: int) -> None:
    text = shown(value, limit)
    assert len(text) <= limit + 40
    text.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(text=any_text | any_text.map(lambda s: s * 500), limit=st.integers(1, 400))
def test_clean_keeps_good_text_and_escapes_the_rest(text: str, limit: int) -> None:
    out = clean(text, limit)
    out.encode("utf-8")
    assert len(out) <= 6 * (limit + 3)  # an escaped surrogate is six characters
    if len(text) <= limit and "\\" not in text:
        assert out.encode("utf-8", "backslashreplace") == text.encode("utf-8", "backslashreplace")
