"""NUTS options passed through `fit` (issue 21): they reach the kernel, and are checked."""

import numpy as np
import pandas as pd
import pytest

import bsts
from bsts import _nuts, inference

SMALL = {"num_warmup": 20, "num_samples": 20, "num_chains": 1, "seed": 0}


def _series():
    rng = np.random.default_rng(1)
    return pd.Series(rng.normal(size=40).cumsum())


def test_max_tree_depth_caps_the_trajectory_and_says_so():
    # Depth 1 cuts every trajectory at one leapfrog step: the user hears of it.
    with pytest.warns(RuntimeWarning, match=r"20 of 20 NUTS draws stopped at the maximum tree"):
        post = bsts.fit(bsts.LocalLevel(), _series(), max_tree_depth=1, **SMALL)
    assert post.sample_stats["num_steps"].max() <= 1


# A depth of 3 may stop draws at the limit; that warning has its own test above.
@pytest.mark.filterwarnings("ignore:.*maximum tree depth:RuntimeWarning")
def test_options_reach_the_kernel(monkeypatch):
    seen = {}
    original = _nuts.hmc

    def recording_hmc(*args, **kwargs):
        init_kernel, sample_kernel = original(*args, **kwargs)

        def init(*a, **k):
            seen.update(k)
            return init_kernel(*a, **k)

        return init, sample_kernel

    monkeypatch.setattr(_nuts, "hmc", recording_hmc)
    post = bsts.fit(
        bsts.LocalLevel(),
        _series(),
        target_accept_prob=0.95,
        max_tree_depth=3,
        dense_mass=True,
        **SMALL,
    )
    assert seen["dense_mass"] is True
    assert seen["target_accept_prob"] == 0.95
    assert seen["max_tree_depth"] == 3
    assert post.sample_stats["num_steps"].max() <= 2**3 - 1


@pytest.mark.parametrize(
    "option, message",
    [
        ({"target_accept_prob": 1.0}, "target_accept_prob must be a number in \\(0, 1\\)"),
        ({"target_accept_prob": True}, "target_accept_prob"),
        ({"max_tree_depth": 0}, "max_tree_depth must be a positive integer"),
        ({"max_tree_depth": 2.5}, "max_tree_depth"),
        ({"dense_mass": "yes"}, "dense_mass must be True or False"),
    ],
)
def test_bad_options_are_rejected(option, message):
    with pytest.raises(ValueError, match=message):
        bsts.fit(bsts.LocalLevel(), _series(), **option)


def test_one_function_per_method():
    assert tuple(inference._FITTERS) == inference.METHODS
