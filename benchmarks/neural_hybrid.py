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
3. **long**: SVI training time per step of `LocalLevel + FourierSeasonal(48, 3) +
   LSTMEmission(["temperature"])` on the first 50,000 half-hours of
   `electricity_halfhourly`, with the whole-sequence LSTM and with windows of 500 steps
   (timed as the difference between runs of 10 and `--long-steps` + 10 steps, so
   compilation is not counted).

Usage:
    python benchmarks/neural_hybrid.py                 # all parts
    python benchmarks/neural_hybrid.py --part simulated
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.example_libraries import optimizers

import bsts
from bsts._lstm import LSTMNetwork, run_sequence
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
    print(f"simulated (seed {seed}): CRPS linear regression {linear:.4f}, hybrid {hybrid:.4f}, ")
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
    data = bsts.datasets.load("electricity_halfhourly").iloc[:50_000]
    data = data[["demand", "temperature"]].reset_index(drop=True)
    for window in (None, 500):
        model = (
            bsts.LocalLevel()
            + bsts.FourierSeasonal(48, 3)
            + bsts.LSTMEmission(["temperature"], window=window)
        )
        times = []
        for num_steps in (10, steps + 10):
            start = time.perf_counter()
            bsts.fit(
                model, data, target="demand", method="map", num_steps=num_steps,
                progress_bar=False,
            )  # fmt: skip
            times.append(time.perf_counter() - start)
        per_step = (times[1] - times[0]) / steps
        label = "whole sequence" if window is None else f"windows of {window}"
        print(
            f"long series T=50,000, {label}: {per_step * 1000:.0f} ms per SVI step "
            f"({steps} steps in {times[1] - times[0]:.1f} s; a 10-step fit, with "
            f"compilation, {times[0]:.1f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = ["simulated", "electricity", "long", "all"]
    parser.add_argument("--part", choices=parts, default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--long-steps", type=int, default=200)
    args = parser.parse_args()
    print(f"devices: {jax.devices()}")
    if args.part in ("simulated", "all"):
        simulated(args.seed)
    if args.part in ("electricity", "all"):
        electricity(args.seed)
    if args.part in ("long", "all"):
        long_series(args.long_steps)


if __name__ == "__main__":
    main()
