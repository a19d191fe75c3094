"""Property tests: wake's pure mappings take any ``system/state`` data and any button kind."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hw import PATTERNS
from services.topics import SYSTEM_STATE, WAKE_EVENT, check_payload
from services.wake import handle_button, handle_state

from .strategies import any_text, data_for


@settings(max_examples=400, deadline=None)
@given(data=data_for(SYSTEM_STATE, state=st.sampled_from(sorted(PATTERNS)) | any_text))
def test_any_state_data_shows_a_known_pattern_or_nothing(data: Any) -> None:
    shown, problem = handle_state(data)
    assert shown is None or shown in PATTERNS
    assert (problem is None) == (shown not in (None, "error"))
    if problem is not None:
        problem.encode("utf-8")  # logged as it is
        assert len(problem) < 200
    if shown is None:
        assert not (isinstance(data, dict) and isinstance(data.get("state"), str))


@given(kind=st.sampled_from(["press", "hold"]) | any_text)
def test_every_button_event_fits_the_table(kind: str) -> None:
    assert check_payload(WAKE_EVENT, handle_button(kind)) == []
