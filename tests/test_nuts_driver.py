"""The NUTS driver (`bsts._nuts`): chains side by side on several host devices, and one
compilation shared by chains run one after the other."""

import subprocess
import sys
import textwrap

import jax
import numpy as np
import pandas as pd
import pytest

import bsts
from bsts import batch

SIDE_BY_SIDE = textwrap.dedent(
    """
    import numpyro
    numpyro.set_host_device_count(2)
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import bsts
    data = bsts.datasets.load("nile")
    post = bsts.fit(bsts.LocalLevel(), data, "volume", num_warmup=100, num_samples=60, seed=3)
    scale = post.samples["observation.scale"]
    assert jax.local_device_count() == 2
    assert scale.shape == (2, 60), scale.shape
    assert post.sample_stats["num_steps"].shape == (2, 60)
    assert not np.allclose(scale[0], scale[1])  # two distinct chains
    assert 80.0 < scale.mean() < 170.0  # near the MLE (sd 123 in original units)
    print("ok")
    """
)


def test_chains_run_side_by_side_on_two_host_devices():
    result = subprocess.run(
        [sys.executable, "-c", SIDE_BY_SIDE], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_sequential_chains_compile_once(monkeypatch):
    # Point-estimated networks run the chains with the data fixed at compile time
    # (`bsts._nuts.run_nuts`, forced here for a plain model); one compilation serves both.
    monkeypatch.setattr("bsts.inference._compiled_once", lambda problem: False)
    data = bsts.datasets.load("nile").copy()
    data.iloc[30, 0] = np.nan
    compiled = []
    original = jax.jit

    def counting_jit(fn, *args, **kwargs):
        compiled.append(getattr(fn, "__name__", ""))
        return original(fn, *args, **kwargs)

    monkeypatch.setattr("bsts._nuts.jax.jit", counting_jit)
    post = bsts.fit(bsts.LocalLevel(), data, "volume", num_warmup=20, num_samples=10, seed=0)
    assert compiled.count("run_chain") == 1
    assert post.samples["level.scale"].shape == (2, 10)
    _assert_warmup_recorded(post, num_warmup=20)
    assert not np.allclose(post.draws["level.scale"][0], post.draws["level.scale"][1])


def test_chains_of_a_gap_free_series_share_one_cached_program():
    # Without gaps the data are arguments of one program per structure (`bsts.batch`):
    # traced once for both chains, and not again for a second series of the same bucket.
    data = bsts.datasets.load("nile")
    batch.clear_cache()
    batch.trace_counts.clear()
    post = bsts.fit(bsts.LocalLevel(), data, "volume", num_warmup=20, num_samples=10, seed=0)
    assert batch.trace_counts["nuts"] == 1
    assert post.samples["level.scale"].shape == (2, 10)
    _assert_warmup_recorded(post, num_warmup=20)
    assert not np.allclose(post.draws["level.scale"][0], post.draws["level.scale"][1])
    bsts.fit(bsts.LocalLevel(), data.iloc[:97], "volume", num_warmup=20, num_samples=10)
    assert batch.trace_counts["nuts"] == 1


def test_a_gappy_series_runs_the_cached_program_with_room_for_its_gaps():
    # The likelihood finds the gaps at run time, so a gappy series shares the compiled
    # programs: one trace for both chains and for a second series with as many gaps.
    data = bsts.datasets.load("nile").copy()
    data.iloc[[30, 31, 60], 0] = np.nan
    batch.clear_cache()
    batch.trace_counts.clear()
    post = bsts.fit(bsts.LocalLevel(), data, "volume", num_warmup=20, num_samples=10, seed=0)
    assert post.series.gap_capacity == 4
    assert batch.trace_counts["nuts"] == 1
    other = bsts.datasets.load("nile").copy()
    other.iloc[[5, 70, 80], 0] = np.nan  # other gaps, as many
    bsts.fit(bsts.LocalLevel(), other, "volume", num_warmup=20, num_samples=10)
    assert batch.trace_counts["nuts"] == 1


def _assert_warmup_recorded(post, num_warmup):
    # Every warm-up iteration's trajectory length (1 to 2^10 - 1 leapfrog steps) and the
    # adapted step size of each chain; the draws' own statistics stay per draw.
    steps = post.adaptation["num_steps"]
    assert steps.shape == (2, num_warmup)
    assert np.all((steps >= 1) & (steps <= 1023))
    assert post.adaptation["step_size"].shape == (2,)
    assert np.all(post.adaptation["step_size"] > 0)
    assert set(post.sample_stats) == {"diverging", "num_steps"}


def _mode_started_fit(monkeypatch, **options):
    # The Nile stands in for a long series: the mode-start threshold lowered to 64 steps.
    batch.clear_cache()
    monkeypatch.setattr("bsts._nuts.MODE_START_LENGTH", 64)
    try:
        return bsts.fit(bsts.LocalLevel(), bsts.datasets.load("nile"), "volume", **options)
    finally:
        batch.clear_cache()


def test_long_series_chains_start_near_the_mode_apart(monkeypatch):
    # From MODE_START_LENGTH steps on, each chain starts at the posterior mode (BFGS from
    # the prior medians) plus its own jitter of the Laplace scale: after a single warm-up
    # iteration the draws already sit in the posterior (a random start lies anywhere in
    # e^(+-2) prior units), and the chains start apart.
    first = _mode_started_fit(monkeypatch, num_warmup=1, num_samples=2)
    scale = first.samples["observation.scale"][:, 0]
    assert not np.isclose(scale[0], scale[1])  # apart
    assert np.all((scale > 80.0) & (scale < 170.0)), scale  # the MLE is 123


def test_uneven_series_start_near_the_mode_from_the_stepwise_length(monkeypatch):
    # An uneven series runs a filter step per step, so its chains start at the mode from
    # STEPWISE_MODE_START_LENGTH padded steps (lowered here to 64; the general threshold
    # stays): one warm-up iteration, and both chains' noise scales sit near the simulated
    # 0.3 (a random start lies anywhere in e^(+-2) prior units), apart from each other.
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.exponential(1.0, 120))
    level = np.cumsum(rng.normal(0.0, 0.05, 120))
    index = pd.Timestamp("2000-01-01") + pd.to_timedelta(times, unit="D")
    data = pd.DataFrame({"y": level + rng.normal(0.0, 0.3, 120)}, index=index)
    batch.clear_cache()
    monkeypatch.setattr("bsts._nuts.STEPWISE_MODE_START_LENGTH", 64)
    try:
        post = bsts.fit(bsts.LocalLevel(), data, "y", num_warmup=1, num_samples=2)
    finally:
        batch.clear_cache()
    assert not post.series.regular
    scale = post.samples["observation.scale"][:, 0]
    assert not np.isclose(scale[0], scale[1])
    assert np.all((scale > 0.22) & (scale < 0.4)), scale


@pytest.mark.slow
def test_long_series_mode_start_gives_the_plain_start_posterior(monkeypatch):
    options = {"num_warmup": 100, "num_samples": 100, "seed": 4}
    plain = bsts.fit(bsts.LocalLevel(), bsts.datasets.load("nile"), "volume", **options)
    started = _mode_started_fit(monkeypatch, **options)
    for name in ("observation.scale", "level.scale"):
        a, b = plain.samples[name], started.samples[name]
        assert abs(np.median(a) - np.median(b)) < 0.3 * np.std(a), name
