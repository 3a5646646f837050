"""float32 against float64 for the closed form across gaps (`bsts.kalman.segments`).

Two checks, each float32 result against the float64 value of the same model:

- LocalLinearTrend + Seasonal(12) at T = 10^4 (the variances of `kalman_speed.py`), with
  0.2%, 2% and 5% of the steps missing at random: the error of the float32
  log-likelihood, and the time of its value and gradient in float32 and float64.
- CO2 (five gaps, two in its first eight months) with LocalLinearTrend +
  FourierSeasonal(12, 6) near its posterior mean, the case that stalled float32 NUTS:
  the error of the float32 closed form and of the float32 exact filter.
- A smooth simulated series like it (T = 300, noise sd 0.01 against a trend and a
  cycle of amplitude 1; LocalLinearTrend + Seasonal(12); gaps at CO2's positions), for
  a few seeds: the same two errors.

Usage:
    python benchmarks/gap_float32.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # float64 references; float32 arrays stay float32

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import bsts  # noqa: E402
from bsts.data import prepare_series  # noqa: E402
from bsts.inference import nest_parameters  # noqa: E402
from bsts.kalman import StateSpace, kalman_filter, marginal_log_likelihood  # noqa: E402
from bsts.kalman.marginal import gap_capacity, interior_gaps  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from kalman_speed import structure  # noqa: E402


def _llt_seasonal(dtype, variances=(1.0, 0.1, 1e-4, 0.01)) -> StateSpace:
    """LocalLinearTrend + Seasonal(12) in `kalman_speed`'s layout, with its own start."""
    F, H = structure()
    d = F.shape[0]
    Q = np.zeros((d, d))
    Q[0, 0], Q[1, 1], Q[2, 2] = variances[1:]
    m0 = np.zeros(d)
    m0[0] = 300.0
    fields = (F, Q, H, 0.0, variances[0], m0, 100.0 * np.eye(d))
    return StateSpace(*(jnp.asarray(a, dtype) for a in fields))


def _timed(f, *args, repeats: int = 20, rounds: int = 5) -> float:
    jax.block_until_ready(f(*args))
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            jax.block_until_ready(f(*args))
        best = min(best, (time.perf_counter() - start) / repeats)
    return 1e3 * best


def _with_gaps(y: np.ndarray):
    capacity = gap_capacity(interior_gaps(y), y.shape[0])

    def total(ssm, v):
        return marginal_log_likelihood(ssm, v, max_gaps=capacity)

    return jax.jit(total), jax.jit(jax.value_and_grad(total))


def simulated_rows(length: int, fractions, seed: int) -> None:
    print(f"\n## LocalLinearTrend + Seasonal(12), T = {length:,}, gaps at random\n")
    print(
        "| missing | float64 value_and_grad (ms) | float32 value_and_grad (ms) "
        "| float32 error (nats) |"
    )
    print("|---|---|---|---|")
    ssm64, ssm32 = _llt_seasonal(jnp.float64), _llt_seasonal(jnp.float32)
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    base = 300 + 0.01 * t + 3 * np.sin(2 * np.pi * t / 12) + np.cumsum(rng.normal(size=length))
    for fraction in fractions:
        y = base.copy()
        y[rng.random(length) < fraction] = np.nan
        y[-1] = base[-1]
        value, grad = _with_gaps(y)
        y64, y32 = jnp.asarray(y), jnp.asarray(y, jnp.float32)
        error = abs(float(value(ssm32, y32)) - float(value(ssm64, y64)))
        ms64, ms32 = _timed(grad, ssm64, y64), _timed(grad, ssm32, y32)
        print(f"| {fraction:.1%} | {ms64:.2f} | {ms32:.2f} | {error:.4f} |", flush=True)


def co2_row() -> None:
    values = bsts.datasets.load("co2").iloc[:, 0].astype(float).asfreq("MS").iloc[:-24]
    model = bsts.LocalLinearTrend(name="trend") + bsts.FourierSeasonal(12, 6, name="seasonal")
    series = prepare_series(values.to_frame("y"), "y", model.covariate_columns)
    inputs = model.inputs(series)
    spread = float(np.nanstd(values))
    # Near the posterior mean of a float64 NUTS fit (original units).
    scales = {"observation.scale": 0.159, "seasonal.scale": 0.006}
    scales |= {"trend.level_scale": 0.18, "trend.slope_scale": 0.002}
    value, _ = _with_gaps(series.y)
    exact = jax.jit(lambda s, v: kalman_filter(s, v).log_likelihood.sum())
    results = {}
    for dtype in (jnp.float64, jnp.float32):
        flat = {k: jnp.asarray(v / spread, dtype) for k, v in scales.items()}
        ssm = model.state_space(nest_parameters(model, flat), inputs)
        ssm = jax.tree_util.tree_map(lambda a, dtype=dtype: jnp.asarray(a, dtype), ssm)
        y = jnp.asarray(series.y, dtype)
        results[dtype] = (float(value(ssm, y)), float(exact(ssm, y)))
    reference = results[jnp.float64][1]
    fast, filtered = results[jnp.float32]
    print("\n## CO2, LocalLinearTrend + FourierSeasonal(12, 6), 5 gaps\n")
    print("| float64 log-likelihood | float32 closed form: error | float32 exact filter: error |")
    print("|---|---|---|")
    print(f"| {reference:.4f} | {abs(fast - reference):.4f} | {abs(filtered - reference):.4f} |")


def smooth_rows(seeds) -> None:
    length = 300
    variances = (1e-4, 1e-4, 1e-8, 1e-7)
    print("\n## Smooth simulated series, T = 300, gaps at 3, 7, 71, 72, 73\n")
    print(
        "| seed | float64 log-likelihood | float32 closed form: error "
        "| float32 exact filter: error |"
    )
    print("|---|---|---|---|")
    exact = jax.jit(lambda s, v: kalman_filter(s, v).log_likelihood.sum())
    for seed in seeds:
        rng = np.random.default_rng(seed)
        t = np.arange(length)
        y = 0.02 * t + np.sin(2 * np.pi * t / 12) + np.cumsum(rng.normal(0.0, 0.01, length))
        y[[3, 7, 71, 72, 73]] = np.nan
        value, _ = _with_gaps(y)

        def system(dtype):
            ssm = _llt_seasonal(dtype, variances)
            zero = jnp.zeros_like(ssm.initial_mean)
            return ssm.replace(initial_mean=zero, initial_cov=jnp.eye(13, dtype=dtype))

        ssm64, ssm32 = system(jnp.float64), system(jnp.float32)
        y64, y32 = jnp.asarray(y), jnp.asarray(y, jnp.float32)
        reference = float(exact(ssm64, y64))
        fast, filtered = float(value(ssm32, y32)), float(exact(ssm32, y32))
        print(
            f"| {seed} | {reference:.4f} | {abs(fast - reference):.4f} "
            f"| {abs(filtered - reference):.4f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=10_000)
    parser.add_argument("--missing", type=float, nargs="*", default=[0.002, 0.02, 0.05])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"# jax {jax.__version__}, {jax.default_backend()}")
    co2_row()
    smooth_rows(range(4))
    simulated_rows(args.length, args.missing, args.seed)


if __name__ == "__main__":
    main()
