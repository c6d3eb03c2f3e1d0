"""analyzer._params: the one parameter check and its one message shape."""

from __future__ import annotations

import re
from numbers import Integral, Real

import numpy as np
import pytest

from analyzer._params import (SEED, SEED_MAX, Boolean, Interval, ListOf, Options, Text, check_param,
                              check_params)
from analyzer.exceptions import AnalyzerError

SHAPE = re.compile(r"^The '\w+' parameter of \w+ must be .+\. Got .+ instead\.$")


def _message(constraints, value, name="k", owner="NeighborIndex"):
    with pytest.raises(AnalyzerError) as info:
        check_param(owner, name, value, *constraints)
    msg = str(info.value)
    assert SHAPE.match(msg), msg
    return msg


def test_the_message_shape_of_the_design_card():
    assert _message([Interval(Integral, 1, 49152)], 0) == \
        "The 'k' parameter of NeighborIndex must be an int in [1, 49152]. Got 0 instead."


@pytest.mark.parametrize("closed, text, inside, outside", [
    ("both", "[0, 1]", [0, 1], [-1, 2]),
    ("left", "[0, 1)", [0], [1]),
    ("right", "(0, 1]", [1], [0]),
    ("neither", "(0, 1)", [0.5], [0, 1]),
])
def test_interval_ends(closed, text, inside, outside):
    c = Interval(Real, 0, 1, closed=closed)
    for v in inside:
        assert check_param("f", "x", v, c) == v
    for v in outside:
        assert f"must be a finite number in {text}. Got {v!r} instead." in _message([c], v, "x", "f")


def test_one_sided_intervals():
    assert "must be an int >= 2." in _message([Interval(Integral, 2, None)], 1)
    assert "must be an int > 2." in _message([Interval(Integral, 2, None, closed="neither")], 2)
    assert "must be a finite number <= 0.5." in _message([Interval(Real, None, 0.5)], 0.6)
    assert "must be a finite number < 0.5." in _message([Interval(Real, None, 0.5, closed="neither")], 0.5)
    assert "must be an int." in _message([Interval(Integral, None, None)], 1.0)


def test_bools_are_refused_where_numbers_are_asked():
    for c in (Interval(Integral, 0, 10), Interval(Real, 0, 10), Options(0, 1)):
        for v in (True, False, np.bool_(True)):
            _message([c], v)


def test_numpy_numbers_are_accepted_and_converted():
    v = check_param("f", "k", np.int64(3), Interval(Integral, 1, None))
    assert v == 3 and type(v) is int
    v = check_param("f", "x", np.float32(0.5), Interval(Real, 0, 1))
    assert v == 0.5 and type(v) is float
    assert check_param("f", "n", np.int32(2), Options(2, 3)) == 2
    assert "Got 0 instead." in _message([Interval(Integral, 1, None)], np.int64(0))   # not np.int64(0)


def test_a_real_interval_takes_ints_and_refuses_nan_and_inf():
    assert check_param("f", "x", 1, Interval(Real, 0, None)) == 1.0
    for v in (float("nan"), float("inf"), np.float64("nan"), "1", None):
        _message([Interval(Real, 0, None)], v)


def test_an_int_interval_refuses_floats_and_strings():
    for v in (1.0, "1", None, [1]):
        _message([Interval(Integral, 0, None)], v)


def test_none_allowed():
    c = [Interval(Integral, 1, None), None]
    assert check_param("evaluate", "limit", None, *c) is None
    assert _message(c, 0, "limit", "evaluate") == \
        "The 'limit' parameter of evaluate must be an int >= 1 or None. Got 0 instead."


def test_options():
    c = Options("all", "last")
    assert check_param("logit_lens", "suffix_positions", "last", c) == "last"
    assert _message([c], "first", "suffix_positions", "logit_lens") == \
        "The 'suffix_positions' parameter of logit_lens must be one of 'all', 'last'. Got 'first' instead."
    assert _message([Options(2, 3)], 4).endswith("must be one of 2, 3. Got 4 instead.")


def test_boolean():
    assert check_param("f", "b", np.bool_(False), Boolean()) is False
    for v in (0, 1, "yes", None):
        assert "must be a bool." in _message([Boolean()], v)


def test_text():
    assert check_param("f", "s", "x", Text()) == "x"
    for v in ("", "  ", None, 3):
        assert "must be a non-empty str." in _message([Text()], v)


def test_list_of():
    c = ListOf(Interval(Real, 0, None), min_len=1)
    assert check_param("f", "gammas", (0, np.float64(0.5)), c) == [0.0, 0.5]
    assert check_param("f", "gammas", np.array([1.0]), c) == [1.0]
    for v in ([], [-1.0], [True], "0.1", {0: 1}, 0.1):
        assert "must be a non-empty list of finite numbers >= 0." in _message([c], v, "gammas", "f")
    assert "must be a list of values among 'a', 'b'." in _message([ListOf(Options("a", "b"))], ["c"])
    assert "a list of at least 2 ints in [0, 3]." in _message([ListOf(Interval(Integral, 0, 3), min_len=2)], [1])


def test_seed():
    assert check_param("f", "seed", np.uint32(SEED_MAX), SEED) == SEED_MAX
    assert _message([SEED], -1, "seed", "f") == \
        f"The 'seed' parameter of f must be an int in [0, {SEED_MAX}]. Got -1 instead."


def test_several_constraints_are_joined_with_or():
    msg = _message([Interval(Integral, 1, None), Options("auto"), None], 0)
    assert "must be an int >= 1, one of 'auto' or None." in msg


def test_check_params_checks_the_named_ones_and_returns_converted_values():
    out = check_params("importance", {"limit": np.int64(5), "other": "x"},
                       {"limit": [Interval(Integral, 2, None), None]})
    assert out == {"limit": 5, "other": "x"} and type(out["limit"]) is int
    with pytest.raises(AnalyzerError, match=r"^The 'limit' parameter of importance must be an int >= 2 or None\. "
                                            r"Got 1 instead\.$"):
        check_params("importance", {"limit": 1}, {"limit": [Interval(Integral, 2, None), None]})


def test_the_error_class_can_be_a_subclass():
    from analyzer.exceptions import TrainingError

    with pytest.raises(TrainingError, match=r"^The 'steps' parameter of TrainConfig must be an int >= 1\. "):
        check_params("TrainConfig", {"steps": 0}, {"steps": [Interval(Integral, 1, None)]}, error=TrainingError)


def test_a_bad_constraint_is_a_programming_error():
    with pytest.raises(ValueError):
        Interval(int, 0, 1)
    with pytest.raises(ValueError):
        Interval(Integral, 0, 1, closed="open")
