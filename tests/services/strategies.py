"""hypothesis strategies for what a hostile login can put in an envelope's ``data``.

Everything JSON can carry and a little more: lone surrogates (valid JSON escapes, not
UTF-8), integers of hundreds of digits, NaN and infinities (ujson reads them), long text,
nesting, and the right field names with the wrong values.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from services.topics import TopicSpec

# Every code point, lone surrogates included (hypothesis leaves them out by default).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
numbers = (st.integers() | st.integers(min_value=-10**400, max_value=10**400)
           | st.floats(allow_nan=True, allow_infinity=True))
scalars = st.none() | st.booleans() | numbers | any_text | st.text(max_size=5).map(
    lambda t: t * 3000)  # long text, cheap to make
values: st.SearchStrategy[Any] = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(any_text, inner, max_size=4), max_leaves=12)


def good_value(spec: TopicSpec, name: str) -> st.SearchStrategy[Any]:
    """A value the table allows for field ``name`` of ``spec``."""
    if name in spec.values:
        return st.sampled_from(sorted(spec.values[name]))
    kinds = spec.fields[name]
    if str in kinds:
        return st.text(max_size=20)
    if dict in kinds:
        return st.dictionaries(st.text(max_size=5), st.integers(-100, 100), max_size=3)
    if list in kinds:
        return st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
                        max_size=3)
    if float not in kinds:
        return st.integers(-10**6, 10**6)
    return st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10**6, 10**6)


def data_for(spec: TopicSpec, **known: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``data`` for ``spec``: its fields (good values from ``known`` or the table, or
    anything), extra keys, and sometimes no object at all."""
    fields = {name: known.get(name, good_value(spec, name)) | values for name in spec.fields}
    objects = st.builds(lambda fixed, extra: {**extra, **fixed},
                        st.fixed_dictionaries({}, optional=fields),
                        st.dictionaries(any_text, values, max_size=2))
    return objects | values
