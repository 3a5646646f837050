"""NUTS on the Kalman-marginalised model against the naive latent-state NumPyro model.

Data: bundled Mauna Loa CO2 (monthly, 526 points, 5 missing months), standardised by
`bsts.data.prepare_series` so both models see the same numbers. Model: local linear trend +
dummy seasonal(12) with bsts's default priors (HalfNormal(1) observation scale,
HalfNormal(0.5) level scale, HalfCauchy(T^-1.5) slope scale, HalfNormal(0.1) seasonal scale,
and the same initial-state distributions).

- **bsts**: `bsts.fit(..., method="nuts")`: the states are integrated out by the Kalman
  filter, so NUTS samples the four scales only.
- **naive**: the same model written the way NumPyro's time-series tutorials write it:
  every latent state sampled inside `numpyro.contrib.control_flow.scan`.

Both use the same NUTS settings (chains, warm-up, draws, seed) in one process, timed from
the call to the last draw, compilation included. Reported: wall time, minimum bulk ESS
over the four scales, ESS per second, divergences. Also the time to a first result: a
fresh process that imports bsts and fits the same model with 2 chains to the first 500
months (default settings), measured from process start and from the `fit` call.

Usage:
    python benchmarks/nuts_vs_naive.py                   # 2 chains, 500 + 500
    python benchmarks/nuts_vs_naive.py --devices 2       # chains side by side (pmap)
    python benchmarks/nuts_vs_naive.py --skip-naive
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np

FIRST_RESULT_SCRIPT = """
import sys, time
start = time.perf_counter()
if int(sys.argv[1]) > 1:
    import numpyro
    numpyro.set_host_device_count(int(sys.argv[1]))
import jax
jax.config.update("jax_enable_x64", True)
import bsts
from bsts import datasets
data = datasets.load("co2").iloc[:500]
t0 = time.perf_counter()
post = bsts.fit(bsts.LocalLinearTrend() + bsts.Seasonal(12), data, target="co2",
                num_chains=2, progress_bar=False)
post.samples
end = time.perf_counter()
print(f"{end - start:.2f} {end - t0:.2f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--devices", type=int, default=1, help="host devices (side-by-side chains)")
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()

    if args.devices > 1:
        import numpyro

        numpyro.set_host_device_count(args.devices)
    import jax

    jax.config.update("jax_enable_x64", True)

    from numpyro.diagnostics import effective_sample_size
    from numpyro.infer import MCMC, NUTS

    import bsts
    from bsts import datasets
    from bsts.data import prepare_series

    scales = ["observation.scale", "trend.level_scale", "trend.slope_scale", "seasonal.scale"]
    data = datasets.load("co2")
    model = bsts.LocalLinearTrend() + bsts.Seasonal(12)
    series = prepare_series(data, "co2", model.covariate_columns)
    y = series.y
    initial_level = float(y[~np.isnan(y)][0])
    settings = dict(
        num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains, seed=args.seed
    )
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
        f"{jax.local_device_count()} device(s); CO2 T={len(y)}, {int(np.isnan(y).sum())} missing; "
        f"{args.chains} chains x ({args.warmup} warm-up + {args.samples} draws), seed {args.seed}"
    )

    rows = []
    start = time.perf_counter()
    post = bsts.fit(model, data, target="co2", progress_bar=False, **settings)
    draws = {name: post.draws[name] for name in scales}
    wall = time.perf_counter() - start
    rows.append(_row("bsts (Kalman-marginalised)", wall, draws, post.sample_stats["diverging"]))

    if not args.skip_naive:
        chain_method = "parallel" if jax.local_device_count() >= args.chains else "sequential"
        mcmc = MCMC(
            NUTS(naive_model),
            num_warmup=args.warmup,
            num_samples=args.samples,
            num_chains=args.chains,
            chain_method=chain_method,
            progress_bar=False,
        )
        start = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(args.seed), np.asarray(y), initial_level)
        samples = mcmc.get_samples(group_by_chain=True)
        draws = {name: np.asarray(samples[name]) for name in scales}
        wall = time.perf_counter() - start
        diverging = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
        rows.append(_row("naive NumPyro (states sampled)", wall, draws, diverging))

    print("\n| model | wall (s) | min bulk ESS | ESS/s | divergences |")
    print("|---|---|---|---|---|")
    for name, wall, ess, divergences in rows:
        print(f"| {name} | {wall:.1f} | {ess:.0f} | {ess / wall:.3g} | {divergences} |")
    if len(rows) == 2:
        ratio = (rows[0][2] / rows[0][1]) / (rows[1][2] / rows[1][1])
        print(f"\nESS/s ratio bsts / naive: {ratio:.0f}x")
    per_scale = {name: float(effective_sample_size(post.draws[name])) for name in scales}
    print("bsts bulk ESS per scale:", {k: round(v) for k, v in per_scale.items()})

    timings = subprocess.run(
        [sys.executable, "-c", FIRST_RESULT_SCRIPT, str(args.devices)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    ).stdout.split()
    print(
        f"\nTime to a first result (fresh process, 2 chains x (500 + 500), LLT + Seasonal(12), "
        f"T=500, {args.devices} device(s)): {timings[0]} s from process start, "
        f"{timings[1]} s for the fit call"
    )


def _row(name, wall, draws, diverging):
    from numpyro.diagnostics import effective_sample_size

    ess = min(float(effective_sample_size(value)) for value in draws.values())
    return name, wall, ess, int(np.sum(diverging))


def naive_model(y, initial_level, period=12):
    """LLT + dummy seasonal with every latent state a NumPyro sample site."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.contrib.control_flow import scan

    observation_scale = numpyro.sample("observation.scale", dist.HalfNormal(1.0))
    level_scale = numpyro.sample("trend.level_scale", dist.HalfNormal(0.5))
    slope_scale = numpyro.sample("trend.slope_scale", dist.HalfCauchy(float(y.shape[0]) ** -1.5))
    seasonal_scale = numpyro.sample("seasonal.scale", dist.HalfNormal(0.1))
    level = numpyro.sample("level_0", dist.Normal(initial_level, 1.0))
    slope = numpyro.sample("slope_0", dist.Normal(0.0, 0.1))
    seasons = numpyro.sample("seasons_0", dist.Normal(0.0, 1.0).expand([period - 1]).to_event(1))
    observed = ~jnp.isnan(y)
    values = jnp.where(observed, y, 0.0)

    def step(carry, inputs):
        level, slope, seasons = carry
        y_t, observed_t = inputs
        with numpyro.handlers.mask(mask=observed_t):
            numpyro.sample("y", dist.Normal(level + seasons[0], observation_scale), obs=y_t)
        next_level = numpyro.sample("level", dist.Normal(level + slope, level_scale))
        next_slope = numpyro.sample("slope", dist.Normal(slope, slope_scale))
        new_season = numpyro.sample("season", dist.Normal(-jnp.sum(seasons), seasonal_scale))
        next_seasons = jnp.concatenate([new_season[None], seasons[:-1]])
        return (next_level, next_slope, next_seasons), None

    scan(step, (level, slope, seasons), (values, observed))


if __name__ == "__main__":
    main()
