"""`bsts.fit_many`: one compiled program per structure and bucket, exact padding, long output.

Every series here is 25-32 steps long, so that the NUTS and MAP programs are compiled once
for the module (bucket 32) and reused by the tests that follow.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.optimize
from numpyro.infer.util import log_density, potential_energy

import bsts
from bsts import batch
from bsts.data import prepare_series
from bsts.inference import checked_options
from bsts.many import fit_prepared

MODEL = bsts.LocalLevel() + bsts.Seasonal(4)
LENGTHS = {"a": 25, "b": 29, "c": 32, "d": 27}
NUTS = {"num_warmup": 40, "num_samples": 40, "num_chains": 1}


def _series(rng, n, start="2000-01"):
    t = np.arange(n)
    y = 50 + np.cumsum(rng.normal(scale=0.5, size=n)) + 3 * np.sin(2 * np.pi * t / 4)
    return pd.Series(y + rng.normal(scale=0.3, size=n), pd.date_range(start, periods=n, freq="MS"))


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(7)
    rows = []
    for key, n in LENGTHS.items():
        series = _series(rng, n, start=f"{2000 + len(rows)}-03")
        rows.append(pd.DataFrame({"unique_id": key, "ds": series.index, "y": series.values}))
    return pd.concat(rows, ignore_index=True)


def _one(frame, key):
    rows = frame[frame["unique_id"] == key]
    return pd.Series(rows["y"].to_numpy(), index=pd.DatetimeIndex(rows["ds"]))


@pytest.fixture(scope="module")
def map_fits(frame):
    return bsts.fit_many(MODEL, frame, method="map", seed=3)


@pytest.fixture(scope="module")
def nuts_fits(frame):
    return bsts.fit_many(MODEL, frame, method="nuts", seed=5, **NUTS)


def test_map_equals_a_loop_of_fit(frame, map_fits):
    assert map_fits.ids == list(LENGTHS)
    for key in LENGTHS:
        alone = bsts.fit(MODEL, _one(frame, key), method="map", seed=3)
        batched = map_fits[key]
        assert batched.series.num_timesteps == LENGTHS[key]
        for site, value in alone.draws.items():
            np.testing.assert_array_equal(batched.draws[site], value, err_msg=f"{key} {site}")


def test_nuts_equals_a_loop_of_fit(frame, nuts_fits):
    # The same compiled chain with the same keys: equal draws, not only equal in law.
    for key in ("a", "c"):
        alone = bsts.fit(MODEL, _one(frame, key), seed=5, **NUTS)
        for site, value in alone.draws.items():
            np.testing.assert_array_equal(nuts_fits[key].draws[site], value)
        np.testing.assert_array_equal(
            nuts_fits[key].sample_stats["diverging"], alone.sample_stats["diverging"]
        )


def test_one_compilation_for_a_bucket_and_for_later_fits(frame):
    batch.clear_cache()
    batch.trace_counts.clear()
    bsts.fit_many(MODEL, frame, method="map", seed=0)
    assert batch.trace_counts["map"] == 1  # four lengths, one bucket
    # A single fit of the same structure, from a model rebuilt by value, compiles nothing.
    rebuilt = bsts.LocalLevel() + bsts.Seasonal(4)
    bsts.fit(rebuilt, _one(frame, "b").iloc[:26], method="map", seed=1)
    assert batch.trace_counts["map"] == 1
    bsts.fit(bsts.LocalLevel() + bsts.Seasonal(3), _one(frame, "b"), method="map")
    assert batch.trace_counts["map"] == 2


def _brute_force_plan(lengths, cost, ready):
    """The cheapest plan by trying every set of buckets that includes the longest."""
    counts = {size: lengths.count(size) for size in set(lengths)}
    sizes = sorted(counts)
    best = None
    for mask in range(2 ** (len(sizes) - 1)):
        chosen = [s for i, s in enumerate(sizes[:-1]) if mask >> i & 1] + [sizes[-1]]
        plan = {s: min(c for c in chosen if c >= s) for s in sizes}
        total = sum(0.0 if ready(c) else cost for c in chosen)
        total += sum(counts[s] * plan[s] for s in sizes)
        if best is None or total < best[0] - 1e-9:
            best = (total, plan)
    return best


def test_bucket_ladders():
    fine = [batch.bucket_length(n) for n in (1, 16, 17, 24, 25, 33, 49, 65, 97, 129)]
    assert fine == [16, 16, 24, 24, 32, 48, 64, 96, 128, 192]
    coarse = [batch.bucket_length(n, per_doubling=1) for n in (1, 16, 17, 33, 64, 65, 129)]
    assert coarse == [16, 16, 32, 64, 64, 128, 256]
    model = bsts.Model([bsts.LocalLevel()])
    # NUTS and SVI buckets are never merged, so they take one rung per doubling.
    assert batch.padded_length(model, 65, "nuts") == 128
    assert batch.padded_length(model, 65, "svi") == 128
    assert batch.padded_length(model, 65, "map") == 96
    # A likelihood that runs a step per padded step takes four rungs per doubling there.
    quarter = [batch.bucket_length(n, per_doubling=4) for n in (16, 17, 21, 25, 29, 33, 1201)]
    assert quarter == [16, 20, 24, 28, 32, 40, 1280]
    assert batch.padded_length(model, 1201, "nuts", stepwise=True) == 1280
    assert batch.padded_length(model, 1201, "svi", stepwise=True) == 1280
    assert batch.padded_length(model, 1201, "map", stepwise=True) == 1536


def test_series_that_run_stepwise():
    index = pd.date_range("2000-01-01", periods=40, freq="D")
    values = np.sin(np.arange(40.0))
    regular = prepare_series(pd.Series(values, index=index), None, [])
    times = index + pd.to_timedelta(np.random.default_rng(0).uniform(0, 12, 40), unit="h")
    uneven = prepare_series(pd.Series(values, index=times), None, [])
    many_gaps = values.copy()
    many_gaps[1:30:2] = np.nan  # more gaps than the closed form makes room for
    gappy = prepare_series(pd.Series(many_gaps, index=index), None, [])
    assert not batch.runs_stepwise(regular.regular, regular.gap_capacity)
    assert batch.runs_stepwise(uneven.regular, uneven.gap_capacity)
    assert gappy.gap_capacity is None and batch.runs_stepwise(gappy.regular, gappy.gap_capacity)


@pytest.mark.parametrize("trial", range(20))
def test_bucket_plan_is_the_cheapest(trial):
    rng = np.random.default_rng(trial)
    ladder = [16, 24, 32, 48, 64, 96, 128, 192]
    lengths = list(rng.choice(ladder, size=int(rng.integers(1, 40))))
    cost = float(rng.choice([0.0, 50.0, 400.0, 5000.0]))
    compiled = set(rng.choice(ladder, size=2))
    plan = batch.plan_buckets(lengths, cost, lambda length: length in compiled)
    expected_total, _ = _brute_force_plan(lengths, cost, lambda length: length in compiled)
    used = set(plan.values())
    total = sum(0.0 if s in compiled else cost for s in used)
    total += sum(plan[s] for s in lengths)
    assert total == pytest.approx(expected_total)
    assert all(plan[s] >= s for s in plan)
    assert max(lengths) in used


def test_bucket_plan_extremes():
    lengths = [16, 16, 48, 48, 96]
    assert batch.plan_buckets(lengths, 0.0) == {16: 16, 48: 48, 96: 96}
    assert batch.plan_buckets(lengths, 1e9) == {16: 96, 48: 96, 96: 96}
    # A compiled bucket costs nothing to keep.
    assert batch.plan_buckets(lengths, 1e9, lambda n: n == 48) == {16: 48, 48: 48, 96: 96}


def test_calls_of_different_programs_share_one_pool_and_keep_their_order():
    double = jax.jit(lambda x: 2.0 * x)
    square = jax.jit(lambda x: x * x)
    calls = [(double if i % 3 else square, (jnp.asarray(float(i)),)) for i in range(10)]
    done = []
    results = batch.run_calls(calls, workers=2, progress=done.append)
    expected = [2.0 * i if i % 3 else float(i * i) for i in range(10)]
    assert [float(r) for r in results] == expected
    assert done == [1] * 10


def _with_a_longer_series(frame):
    """The frame plus a 60-step series, in a fresh compilation cache."""
    long = _series(np.random.default_rng(5), 60)
    batch.clear_cache()
    batch.trace_counts.clear()
    return pd.concat(
        [frame, pd.DataFrame({"unique_id": "long", "ds": long.index, "y": long.values})]
    )


def test_map_merges_buckets(frame):
    wider = _with_a_longer_series(frame)
    bsts.fit_many(MODEL, wider, method="map", seed=0)
    assert batch.trace_counts["map"] == 1  # buckets 32 and 64: one program at 64


@pytest.mark.slow
def test_nuts_does_not_merge_buckets(frame):
    wider = _with_a_longer_series(frame)
    bsts.fit_many(MODEL, wider, method="nuts", seed=0, **NUTS)
    # NUTS draws must not depend on which series share the call: no merging.
    assert batch.trace_counts["nuts"] == 2


@pytest.mark.parametrize("length", [32, pytest.param(48, marks=pytest.mark.slow), 96])
def test_padding_is_exact(frame, length):
    """Log density and gradient of a padded series equal those of the series alone."""
    series = prepare_series(_one(frame, "b"), None, [])
    inputs = MODEL.inputs(series)
    params = {
        "observation.scale": jnp.asarray(0.3),
        "level.scale": jnp.asarray(0.2),
        "seasonal.scale": jnp.asarray(0.05),
    }

    def alone(p):
        return log_density(MODEL, (inputs,), {"y": jnp.asarray(series.y)}, p)[0]

    arrays = batch.padded_arrays(series, inputs, length)

    @jax.jit
    def padded(p, arrays):
        padded_inputs = batch._inputs(arrays, batch.Program("map", length, True, ()))
        return log_density(MODEL, (padded_inputs,), {"y": arrays["y"]}, p)[0]

    expected, expected_grad = jax.value_and_grad(alone)(params)
    value, grad = jax.value_and_grad(padded)(params, arrays)
    np.testing.assert_allclose(float(value), float(expected), rtol=1e-10)
    for site in params:
        np.testing.assert_allclose(float(grad[site]), float(expected_grad[site]), rtol=1e-8)


def test_a_series_alone_equals_it_padded_among_longer_ones(frame, map_fits):
    rng = np.random.default_rng(11)
    long = _series(rng, 60)
    wider = pd.concat(
        [
            frame[frame["unique_id"] == "b"],
            pd.DataFrame({"unique_id": "long", "ds": long.index, "y": long.values}),
        ]
    )
    # "b" now shares the frame with a 60-step series. With nothing compiled, one MAP
    # program at the longer bucket is cheaper than two, so "b" is padded to 64 steps,
    # which moves its mode by round-off only (the log density is exact: above).
    batch.clear_cache()
    batch.trace_counts.clear()
    fits = bsts.fit_many(MODEL, wider, method="map", seed=3)
    assert batch.trace_counts["map"] == 1
    for site, value in map_fits["b"].draws.items():
        np.testing.assert_allclose(fits["b"].draws[site], value, rtol=1e-6, atol=1e-9)


def test_the_frame_is_not_modified(frame):
    before = frame.copy(deep=True)
    shuffled = frame.sample(frac=1.0, random_state=0)
    kept = shuffled.copy(deep=True)
    fits = bsts.fit_many(MODEL, shuffled, method="map", seed=3)
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_frame_equal(shuffled, kept)
    assert sorted(fits.ids) == sorted(LENGTHS)


def test_bad_series_raise_with_their_id_or_are_skipped(frame):
    bad = frame.copy()
    bad.loc[bad["unique_id"] == "b", "y"] = 1.0  # constant
    with pytest.raises(ValueError, match=r"series 'b': the target 'y' is constant"):
        bsts.fit_many(MODEL, bad, method="map")
    with pytest.warns(UserWarning, match="1 series skipped"):
        fits = bsts.fit_many(MODEL, bad, method="map", errors="skip")
    assert fits.ids == ["a", "c", "d"]
    assert list(fits.skipped["unique_id"]) == ["b"]
    assert "constant" in fits.skipped["reason"].iloc[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "hmc"}, "unknown method 'hmc'"),
        ({"backend": "spark"}, "unknown backend 'spark'"),
        ({"errors": "ignore"}, "errors must be one of raise, skip"),
        ({"target": "sales"}, r"column\(s\) \['sales'\] not in the frame"),
        ({"num_samples": 0}, "num_samples must be a positive integer"),
    ],
)
def test_bad_options(frame, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bsts.fit_many(MODEL, frame, **{"method": "map", **kwargs})


def test_missing_rows_become_gaps_on_the_calendar(frame):
    holed = frame.drop(index=frame.index[(frame["unique_id"] == "a")][[5, 6]])
    fits = bsts.fit_many(MODEL, holed, method="map")
    series = fits["a"].series
    assert series.regular and series.num_timesteps == LENGTHS["a"]
    assert np.isnan(series.y[[5, 6]]).all()
    # A gapped series gets a program with room for its gaps (the closed form across
    # them), and still equals its single fit.
    assert series.gapped and not fits["b"].series.gapped
    assert series.gap_capacity == 4 and fits["b"].series.gap_capacity == 0
    alone = bsts.fit(MODEL, pd.Series(series.to_original(series.y), series.index), method="map")
    for site, value in alone.draws.items():
        np.testing.assert_allclose(fits["a"].draws[site], value, rtol=1e-6, err_msg=site)


def test_summary_is_long_and_flags_convergence(nuts_fits):
    table = nuts_fits.summary()
    assert list(table.columns[:2]) == ["unique_id", "parameter"]
    assert {"mean", "sd", "ess_bulk", "r_hat", "divergences", "converged"} <= set(table.columns)
    assert len(table) == len(LENGTHS) * 3
    assert list(table["unique_id"].unique()) == list(LENGTHS)
    diagnostics = nuts_fits.diagnostics()
    assert list(diagnostics.index) == list(LENGTHS)
    # 40 draws cannot reach an ESS of 100: every series is flagged, none hidden.
    assert not diagnostics["converged"].any()
    assert diagnostics["converged"].dtype == bool
    relaxed = nuts_fits.diagnostics(max_r_hat=10.0, min_ess=1.0)
    assert relaxed["converged"].sum() == (relaxed["divergences"] == 0).sum()


def test_series_cut_at_the_maximum_tree_depth_are_named(nuts_fits):
    from bsts.many import _warn_at_maximum_depth

    posteriors = {key: nuts_fits[key] for key in nuts_fits.ids}
    # Depth 1 allows one leapfrog step, which every draw takes: all four are named.
    with pytest.warns(RuntimeWarning, match=r"4 of 4 series .* \['a', 'b', 'c', 'd'\]"):
        _warn_at_maximum_depth(posteriors, 1)
    deepest = max(int(post.sample_stats["num_steps"].max()) for post in posteriors.values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_at_maximum_depth(posteriors, int(np.log2(deepest + 1)) + 1)


def test_map_summary_has_the_modes(map_fits):
    table = map_fits.summary()
    assert list(table.columns) == ["unique_id", "parameter", "mean"]
    row = table[(table["unique_id"] == "c") & (table["parameter"] == "level.scale")]
    np.testing.assert_allclose(
        row["mean"].iloc[0], map_fits["c"].samples["level.scale"][0, 0], rtol=1e-12
    )


def test_forecast_is_long_and_equals_each_series_forecast(map_fits):
    forecasts = bsts.forecast(map_fits, horizon=5, seed=2)
    table = forecasts.to_pandas(interval=0.95)
    assert list(table.columns) == ["unique_id", "time", "mean", "median", "lower", "upper"]
    assert len(table) == 5 * len(LENGTHS)
    for key in ("a", "d"):
        alone = bsts.forecast(map_fits[key], horizon=5, seed=2)
        # The same keys; only the padded filter's round-off differs.
        np.testing.assert_allclose(forecasts[key].draws, alone.draws, rtol=1e-12)
        np.testing.assert_allclose(forecasts[key].mean(), alone.mean(), rtol=1e-12)
        rows = table[table["unique_id"] == key]
        assert list(rows["time"]) == list(alone.index)


def test_covariates_and_a_future_frame():
    rng = np.random.default_rng(3)
    rows, future = [], []
    for key, n in (("x", 26), ("z", 30)):
        t = pd.date_range("2010-01", periods=n + 4, freq="MS")
        price = rng.normal(size=n + 4)
        y = 20 + np.cumsum(rng.normal(scale=0.3, size=n + 4)) - 2.0 * price
        rows.append(pd.DataFrame({"id": key, "t": t[:n], "sales": y[:n], "price": price[:n]}))
        future.append(pd.DataFrame({"id": key, "t": t[n:], "price": price[n:]}))
    frame, future = pd.concat(rows), pd.concat(future)
    model = bsts.LocalLevel() + bsts.Regression(["price"])
    fits = bsts.fit_many(model, frame, id_col="id", time_col="t", target="sales", method="map")
    assert fits["x"].samples["regression.coefficients"].ravel()[0] < 0
    forecasts = bsts.forecast(fits, future=future, seed=0)
    assert len(forecasts.to_pandas()) == 8
    with pytest.raises(ValueError, match=r"future has no rows for series \['z'\]"):
        bsts.forecast(fits, future=future[future["id"] == "x"])


def test_dask_backend_equals_local(frame, map_fits):
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own start-up chatter
        cluster = distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
    try:
        fits = bsts.fit_many(MODEL, frame, method="map", seed=3, backend="dask")
    finally:
        client.close()
        cluster.close()
    assert fits.ids == map_fits.ids
    for key in fits.ids:
        for site, value in map_fits[key].draws.items():
            np.testing.assert_array_equal(fits[key].draws[site], value)


def test_map_with_the_jacobian_is_the_mode_of_the_unconstrained_density():
    # White noise: the seasonal scale's density peaks at zero, its log's does not.
    rng = np.random.default_rng(11)
    y = pd.Series(10 + rng.normal(size=32), pd.date_range("2000-01", periods=32, freq="MS"))
    data = prepare_series(y, None, [])
    options = checked_options(
        method="map", num_warmup=1, num_samples=1, num_chains=1, num_steps=2000, guide="normal",
        learning_rate=0.01, target_accept_prob=0.8, max_tree_depth=10, dense_mass=False,
    )  # fmt: skip
    plain, mode = (
        {name: float(np.ravel(value)[0]) for name, value in fit.draws.items()}
        for fit in (
            fit_prepared(MODEL, {"s": data}, "map", options)["s"],
            fit_prepared(MODEL, {"s": data}, "map", {**options, "jacobian": True})["s"],
        )
    )
    assert plain["seasonal.scale"] < 1e-4 < 0.01 < mode["seasonal.scale"]

    # Reference: SciPy's L-BFGS on NumPyro's potential of log-scales, from another start.
    args, kwargs = (MODEL.inputs(data),), {"y": jnp.asarray(data.y)}
    names = sorted(mode)

    def potential(logs):
        params = {name: jnp.asarray(value) for name, value in zip(names, logs, strict=True)}
        return potential_energy(MODEL, args, kwargs, params)

    value_and_grad = jax.jit(jax.value_and_grad(potential))
    found = scipy.optimize.minimize(
        lambda x: tuple(np.asarray(v, float) for v in value_and_grad(jnp.asarray(x))),
        np.zeros(len(names)),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-10, "ftol": 1e-14},
    )
    assert found.success, found.message
    np.testing.assert_allclose(
        [mode[name] for name in names], np.exp(found.x), rtol=1e-4, err_msg=str(names)
    )
