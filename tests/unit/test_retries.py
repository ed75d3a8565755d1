"""The pure retry-delay functions in stratoflow.retries."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratoflow import exponential_backoff
from stratoflow.retries import delay_before_retry, delays_for, jittered

ALMOST_ONE = math.nextafter(1.0, 0.0)


# exponential_backoff


def test_exponential_backoff_doubles_from_the_factor() -> None:
    assert exponential_backoff(10)(4) == [10.0, 20.0, 40.0, 80.0]


def test_exponential_backoff_returns_floats() -> None:
    delays = exponential_backoff(3)(3)
    assert delays == [3.0, 6.0, 12.0]
    assert all(type(d) is float for d in delays)


def test_exponential_backoff_with_zero_retries_is_empty() -> None:
    assert exponential_backoff(5)(0) == []


def test_exponential_backoff_with_zero_factor_is_all_zero() -> None:
    assert exponential_backoff(0)(3) == [0.0, 0.0, 0.0]


def test_exponential_backoff_rejects_a_negative_factor() -> None:
    with pytest.raises(ValueError, match=r"factor >= 0"):
        exponential_backoff(-1)


def test_exponential_backoff_has_a_readable_name() -> None:
    assert exponential_backoff(10).__name__ == "exponential_backoff(10)"


# delays_for


def test_delays_for_a_number_repeats_it_for_every_retry() -> None:
    assert delays_for(5, 3) == [5.0, 5.0, 5.0]


def test_delays_for_a_float() -> None:
    assert delays_for(0.25, 2) == [0.25, 0.25]


def test_delays_for_a_short_list_repeats_the_last_value() -> None:
    assert delays_for([1, 10], 4) == [1.0, 10.0, 10.0, 10.0]


def test_delays_for_a_list_of_exact_length() -> None:
    assert delays_for([1, 2, 3], 3) == [1.0, 2.0, 3.0]


def test_delays_for_a_long_list_is_cut_to_the_number_of_retries() -> None:
    assert delays_for([1, 2, 3, 4, 5], 2) == [1.0, 2.0]


def test_delays_for_an_empty_list_means_no_delay() -> None:
    assert delays_for([], 2) == [0.0, 0.0]


def test_delays_for_a_callable_receives_the_number_of_retries() -> None:
    seen: list[int] = []

    def custom(retries: int) -> list[float]:
        seen.append(retries)
        return [7, 8]

    assert delays_for(custom, 3) == [7.0, 8.0, 8.0]
    assert seen == [3]


def test_delays_for_exponential_backoff() -> None:
    assert delays_for(exponential_backoff(2), 3) == [2.0, 4.0, 8.0]


@pytest.mark.parametrize("value", [5, [1, 2], exponential_backoff(1)])
def test_delays_for_zero_retries_is_empty(value: object) -> None:
    assert delays_for(value, 0) == []  # type: ignore[arg-type]


def test_delays_for_zero_retries_does_not_call_the_callable() -> None:
    def must_not_be_called(retries: int) -> list[float]:
        raise AssertionError("called")

    assert delays_for(must_not_be_called, 0) == []


def test_delay_before_retry_picks_one_delay() -> None:
    assert delay_before_retry([1, 10, 60], 4, 0) == 1.0
    assert delay_before_retry([1, 10, 60], 4, 2) == 60.0
    assert delay_before_retry([1, 10, 60], 4, 3) == 60.0


# jittered


def test_jittered_with_rng_zero_is_the_lower_bound() -> None:
    assert jittered(10.0, 0.5, lambda: 0.0) == pytest.approx(5.0)


def test_jittered_with_rng_almost_one_is_just_below_the_upper_bound() -> None:
    value = jittered(10.0, 0.5, lambda: ALMOST_ONE)
    assert value == pytest.approx(15.0)
    assert value < 15.0


def test_jittered_with_rng_half_is_the_delay() -> None:
    assert jittered(10.0, 0.5, lambda: 0.5) == pytest.approx(10.0)


def test_jittered_interpolates_linearly() -> None:
    assert jittered(8.0, 0.25, lambda: 0.25) == pytest.approx(7.0)


@pytest.mark.parametrize("factor", [None, 0, 0.0])
def test_jittered_without_a_factor_returns_the_delay_unchanged(factor: float | None) -> None:
    def must_not_be_called() -> float:
        raise AssertionError("rng called")

    assert jittered(12.5, factor, must_not_be_called) == 12.5


def test_jittered_zero_delay_stays_zero() -> None:
    assert jittered(0.0, 0.5, lambda: 0.9) == 0.0


def test_jittered_factor_above_one_never_goes_negative() -> None:
    assert jittered(10.0, 3.0, lambda: 0.0) == 0.0
    # The range is [0, 40]: the lower half is clamped, not the result.
    assert jittered(10.0, 3.0, lambda: 0.5) == pytest.approx(20.0)


def test_jittered_uses_random_by_default() -> None:
    values = {jittered(10.0, 0.5) for _ in range(20)}
    assert all(5.0 <= v <= 15.0 for v in values)
    assert len(values) > 1


@given(
    delay=st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    factor=st.floats(min_value=0, max_value=10, allow_nan=False, allow_infinity=False),
    draw=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_jittered_stays_within_its_bounds(delay: float, factor: float, draw: float) -> None:
    value = jittered(delay, factor, lambda: draw)
    low = max(0.0, delay * (1 - factor))
    high = delay * (1 + factor)
    tolerance = 1e-9 * max(1.0, high)
    assert value >= 0.0
    assert low - tolerance <= value <= high + tolerance


@given(
    value=st.one_of(
        st.floats(min_value=0, max_value=1e4, allow_nan=False),
        st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), max_size=6),
    ),
    retries=st.integers(min_value=0, max_value=12),
)
def test_delays_for_always_returns_one_delay_per_retry(
    value: float | list[float], retries: int
) -> None:
    delays = delays_for(value, retries)
    assert len(delays) == retries
    assert all(d >= 0 for d in delays)
    if isinstance(value, list) and value and retries:
        assert delays[: len(value)] == [float(v) for v in value[:retries]]
        assert delays[-1] == (float(value[-1]) if retries >= len(value) else value[retries - 1])
