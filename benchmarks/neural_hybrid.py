"""Neural hybrid (structural + LSTM) against structural + linear regression and a pure LSTM.

Three parts (mean CRPS over the held-out steps, lower is better, in the series' units):

1. **simulated**: a local level plus a U-shaped covariate effect
   $f(x) = 1.5 x^2$ of a persistent covariate (AR(1), $\\phi = 0.95$), noise sd 0.3;
   T = 500 + 60 held out with the covariate known. `LocalLevel + Regression(["x"])` against
   `LocalLevel + LSTMEmission(["x"])`, both by SVI with the same settings. The hybrid must
   reach at most 0.7 x the linear model's CRPS.
2. **electricity**: daily Victoria electricity demand (`bsts.datasets.load("electricity")`),
   the last 61 days (Nov-Dec 2014) held out with their observed temperatures.
   Structural + linear: `LocalLevel + Seasonal(7) + Regression(["temperature", "holiday"])`;
   hybrid: `LocalLevel + Seasonal(7) + Regression(["holiday"]) + LSTMEmission(["temperature"])`;
   pure LSTM: the same Equinox LSTM reading temperature, holiday and day-of-week, with a
   Normal output (mean and log sd per step), trained by Adam on the Gaussian negative
   log-likelihood with the same weight decay, no structural part.
3. **regularisation**: the fitted observation scale (MAP, 600 Adam steps) of a local level
   plus a point-estimated LSTM on 60 points of white noise with an irrelevant covariate,
   with the default weight prior (scale 0.5) and practically none (scale 1000).
4. **long**: SVI training time per step of `LocalLevel + FourierSeasonal(48, 3)` plus
   `LSTMEmission(["temperature"])` or `LSTMTransition(["temperature"])` on the first 50,000
   half-hours of `electricity_halfhourly`, with the whole-sequence LSTM and with windows
   (`--long-steps` jitted SVI updates timed after the first, which compiles; MAP guide).

Usage:
    python benchmarks/neural_hybrid.py                 # all parts
    python benchmarks/neural_hybrid.py --part simulated
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
from jax.example_libraries import optimizers
from numpyro.infer.autoguide import AutoDelta

import bsts
from bsts._lstm import LSTMNetwork, run_sequence
from bsts.data import prepare_series
from bsts.metrics import crps_from_draws, crps_normal

jax.config.update("jax_enable_x64", True)

SVI = {"method": "svi", "num_steps": 3000, "learning_rate": 0.01, "num_samples": 300}


def held_out_crps(model, data, target, holdout, seed=0, **fit_args) -> float:
    train, test = data.iloc[:-holdout], data.iloc[-holdout:]
    post = bsts.fit(model, train, target=target, seed=seed, progress_bar=False, **fit_args)
    columns = post.model.covariate_columns
    forecast = bsts.forecast(post, future=test[columns], seed=seed)
    return float(np.mean(crps_from_draws(forecast.draws, test[target].to_numpy())))


def simulated(seed: int) -> None:
    rng = np.random.default_rng(seed)
    T, holdout = 560, 60
    x = np.zeros(T)
    for t in range(1, T):
        x[t] = 0.95 * x[t - 1] + rng.normal(scale=np.sqrt(1 - 0.95**2))
    level = 10.0 + np.cumsum(rng.normal(scale=0.05, size=T))
    y = level + 1.5 * x**2 + rng.normal(scale=0.3, size=T)
    data = pd.DataFrame({"y": y, "x": x}, index=pd.date_range("2020-01-01", periods=T, freq="D"))
    linear = held_out_crps(
        bsts.LocalLevel() + bsts.Regression(["x"]), data, "y", holdout, seed, **SVI
    )
    hybrid = held_out_crps(
        bsts.LocalLevel() + bsts.LSTMEmission(["x"]), data, "y", holdout, seed, **SVI
    )
    print(f"simulated (seed {seed}): CRPS linear regression {linear:.4f}, hybrid {hybrid:.4f}")
    print(f"  ratio hybrid / linear = {hybrid / linear:.3f} (target <= 0.7)")


def _calendar(index: pd.DatetimeIndex) -> np.ndarray:
    return np.eye(7)[index.day_of_week]


def pure_lstm_crps(data, holdout, seed, steps=3000, hidden=16) -> float:
    """A Normal-output LSTM on temperature, holiday and day-of-week, no structural part."""
    features = np.column_stack(
        [data[["temperature", "holiday"]].to_numpy(float), _calendar(data.index)]
    )
    train = slice(0, len(data) - holdout)
    location, spread = features[train].mean(0), features[train].std(0)
    spread[spread == 0] = 1.0
    x = jnp.asarray((features - location) / spread)
    y = data["demand"].to_numpy(float)
    y_location, y_scale = y[train].mean(), y[train].std()
    z = jnp.asarray((y - y_location) / y_scale)
    network = LSTMNetwork(x.shape[1], hidden, 2, jax.random.PRNGKey(seed))
    n_train = len(data) - holdout

    def loss(net):
        out = run_sequence(net, x[:n_train])
        mean, log_sd = out[:, 0], out[:, 1]
        nll = jnp.sum(log_sd + 0.5 * ((z[:n_train] - mean) / jnp.exp(log_sd)) ** 2)
        # The same Normal(0, 0.5) weight prior as the bsts components.
        leaves = jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_inexact_array))
        return nll + sum(jnp.sum(w**2) for w in leaves) / (2 * 0.5**2)

    weights, static = eqx.partition(network, eqx.is_inexact_array)
    init, update, get = optimizers.adam(0.01)

    @jax.jit
    def step(i, state):
        grads = jax.grad(lambda w: loss(eqx.combine(w, static)))(get(state))
        return update(i, grads, state)

    state = init(weights)
    for i in range(steps):
        state = step(i, state)
    network = eqx.combine(get(state), static)
    out = np.asarray(run_sequence(network, x))[n_train:]
    mean = y_location + y_scale * out[:, 0]
    sd = y_scale * np.exp(out[:, 1])
    return float(np.mean(crps_normal(mean, sd, y[n_train:])))


def electricity(seed: int) -> None:
    data = bsts.datasets.load("electricity")[["demand", "temperature", "holiday"]]
    holdout = 61
    linear = held_out_crps(
        bsts.LocalLevel() + bsts.Seasonal(7) + bsts.Regression(["temperature", "holiday"]),
        data,
        "demand",
        holdout,
        seed,
        **SVI,
    )
    hybrid = held_out_crps(
        bsts.LocalLevel()
        + bsts.Seasonal(7)
        + bsts.Regression(["holiday"])
        + bsts.LSTMEmission(["temperature"]),
        data,
        "demand",
        holdout,
        seed,
        **SVI,
    )
    pure = pure_lstm_crps(data, holdout, seed)
    print(f"electricity daily, last {holdout} days (seed {seed}): CRPS (MW)")
    print(f"  structural + linear regression {linear:.1f}")
    print(f"  hybrid (structural + LSTMEmission) {hybrid:.1f}")
    print(f"  pure LSTM {pure:.1f}")


def long_series(steps: int) -> None:
    """Time SVI steps (after compilation) on 50,000 half-hours, whole sequence vs windows."""
    data = bsts.datasets.load("electricity_halfhourly").iloc[:50_000]
    data = data[["demand", "temperature"]].reset_index(drop=True)
    cases = [(bsts.LSTMEmission, w) for w in (None, 500, 100)]
    cases += [(bsts.LSTMTransition, w) for w in (None, 500)]
    for component, window in cases:
        model = (
            bsts.LocalLevel()
            + bsts.FourierSeasonal(48, 3)
            + component(["temperature"], window=window)
        )
        series = prepare_series(data, "demand", model.covariate_columns)
        # The inputs fit() optimises with (training layout on).
        inputs = dataclasses.replace(model.inputs(series), training=True)
        y = jnp.asarray(series.y)
        svi = numpyro.infer.SVI(
            model, AutoDelta(model), numpyro.optim.Adam(0.01), numpyro.infer.Trace_ELBO()
        )
        start = time.perf_counter()
        state = svi.init(jax.random.PRNGKey(0), inputs, y=y)
        update = jax.jit(lambda state, svi=svi, inputs=inputs, y=y: svi.update(state, inputs, y=y))
        state, loss = update(state)
        loss.block_until_ready()
        compile_time = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(steps):
            state, loss = update(state)
        loss.block_until_ready()
        per_step = (time.perf_counter() - start) / steps
        label = "whole sequence" if window is None else f"windows of {window}"
        print(
            f"long series T=50,000, {component.__name__}, {label}: "
            f"{per_step * 1000:.0f} ms per SVI step "
            f"(mean of {steps}; set-up and compilation {compile_time:.1f} s; "
            f"1,000 steps would take {compile_time + 1000 * per_step:.0f} s)"
        )


def regularisation() -> None:
    """Observation scale of a point-estimated LSTM fit to pure noise, with and without prior."""
    rng = np.random.default_rng(11)
    T = 60
    data = pd.DataFrame(
        {"y": 5.0 + rng.normal(size=T), "x": rng.normal(size=T)},
        index=pd.date_range("2021-01-01", periods=T, freq="D"),
    )
    print(f"regularisation: T={T} white noise (sample sd {np.std(data['y']):.3f}), x irrelevant")
    for prior_scale in (0.5, 1000.0):
        for hidden in (8, 32):
            model = bsts.LocalLevel() + bsts.LSTMEmission(
                ["x"], hidden_size=hidden, weight_prior_scale=prior_scale
            )
            post = bsts.fit(
                model, data, target="y", method="map", num_steps=600, learning_rate=0.02,
                progress_bar=False,
            )  # fmt: skip
            noise = float(post.samples["observation.scale"].ravel()[0])
            print(
                f"  weight_prior_scale={prior_scale:g}, hidden_size={hidden}: "
                f"fitted observation scale {noise:.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = ["simulated", "electricity", "regularisation", "long", "all"]
    parser.add_argument("--part", choices=parts, default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--long-steps", type=int, default=20)
    args = parser.parse_args()
    print(f"devices: {jax.devices()}")
    if args.part in ("simulated", "all"):
        simulated(args.seed)
    if args.part in ("electricity", "all"):
        electricity(args.seed)
    if args.part in ("regularisation", "all"):
        regularisation()
    if args.part in ("long", "all"):
        long_series(args.long_steps)


if __name__ == "__main__":
    main()
