"""Wall time of the light-curve tutorial's NUTS fit (`examples/uneven.py`).

LocalLevel + FourierSeasonal(2 harmonics) on the bundled light curve's training points
(unevenly sampled, time-varying F and Q), NUTS 2 chains x (500 + 500), float64 as in the
tutorial. Prints the wall time of `bsts.fit` (compilation included), the smallest bulk
ESS and the divergences.

With `--points N` only the first N training points are fitted; `--mode-start-length L`
starts chains at the posterior mode from L padded steps on (both of `bsts._nuts`'s
thresholds), instead of the library's choice, to compare the two starts.

Usage:
    python benchmarks/lightcurve_nuts.py
    python benchmarks/lightcurve_nuts.py --num-warmup 100 --num-samples 100
    python benchmarks/lightcurve_nuts.py --points 300 --mode-start-length 1000000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpyro

numpyro.set_host_device_count(min(2, os.cpu_count() or 1))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import bsts  # noqa: E402
import bsts._nuts  # noqa: E402
from bsts.batch import padded_length  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from uneven import HOLDOUT_DAYS, MAX_ERROR, PERIOD_DAYS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-warmup", type=int, default=500)
    parser.add_argument("--num-samples", type=int, default=500)
    parser.add_argument("--num-chains", type=int, default=2)
    parser.add_argument("--points", type=int, default=None)
    parser.add_argument("--mode-start-length", type=int, default=None)
    args = parser.parse_args()
    if args.mode_start_length is not None:
        bsts._nuts.MODE_START_LENGTH = args.mode_start_length
        bsts._nuts.STEPWISE_MODE_START_LENGTH = args.mode_start_length
    raw = bsts.datasets.load("lightcurve")
    data = raw.loc[raw["err_b"] <= MAX_ERROR, ["mag_b"]]
    cut = data.index[-1] - pd.Timedelta(days=HOLDOUT_DAYS)
    train = data.loc[data.index <= cut].iloc[: args.points]
    step_days = float(np.median(np.diff(train.index.asi8) / 86400e9))
    model = bsts.LocalLevel() + bsts.FourierSeasonal(PERIOD_DAYS / step_days, harmonics=2)
    start = time.perf_counter()
    post = bsts.fit(
        model,
        train,
        target="mag_b",
        num_warmup=args.num_warmup,
        num_samples=args.num_samples,
        num_chains=args.num_chains,
    )
    wall = time.perf_counter() - start
    summary = post.summary()
    print(
        f"{len(train)} points (padded to {padded_length(model, len(train), 'nuts', True)}), "
        f"mode start from {bsts._nuts.STEPWISE_MODE_START_LENGTH} padded steps, "
        f"NUTS {args.num_chains} x ({args.num_warmup} + "
        f"{args.num_samples}): {wall:.1f} s; min bulk ESS {summary['ess_bulk'].min():.0f}; "
        f"divergences {int(np.sum(post.sample_stats['diverging']))}; leapfrog steps per "
        f"chain: warm-up {post.adaptation['num_steps'].sum(axis=1).tolist()}, sampling "
        f"{post.sample_stats['num_steps'].sum(axis=1).tolist()}"
    )


if __name__ == "__main__":
    main()
