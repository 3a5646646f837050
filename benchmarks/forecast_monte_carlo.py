"""Monte Carlo error of a forecast score from simulated paths, against the exact predictive.

Fit the `benchmarks/forecast_accuracy.py` set-up once per series (LLT + Seasonal(12), NUTS
2 x 500/500, seed 0), then score the same posterior's 24-month forecast in two ways:

- **simulated**: CRPS from the 1000 simulated paths (one per posterior draw), for several
  forecast seeds; only the simulation noise changes between seeds;
- **exact**: CRPS of the equal-weight mixture of the draws' Normal predictives
  (`Forecast.crps`), which has no simulation noise.

Each is reported as a ratio to statsmodels' MLE forecast, as in `forecast_accuracy.py`.

Usage:
    python benchmarks/forecast_monte_carlo.py --forecast-seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from forecast_accuracy import HOLDOUT, run_statsmodels, series

import bsts
from bsts.metrics import crps_from_draws

jax.config.update("jax_enable_x64", True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--forecast-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    print("| series | exact ratio | simulated ratio per forecast seed | simulated range |")
    print("|---|---|---|---|")
    for name in ("co2", "airline"):
        values = series(name)
        train, test = values.iloc[:-HOLDOUT], np.asarray(values.iloc[-HOLDOUT:], float)
        reference, _ = run_statsmodels(train, test)
        model = bsts.LocalLinearTrend() + bsts.Seasonal(12)
        post = bsts.fit(model, train, seed=0, progress_bar=False)
        exact, simulated = None, []
        for seed in args.forecast_seeds:
            prediction = bsts.forecast(post, horizon=HOLDOUT, seed=seed)
            # The exact score depends on the posterior draws only, not on the forecast seed.
            exact = float(np.mean(prediction.crps(test))) / reference
            simulated.append(float(np.mean(crps_from_draws(prediction.draws, test))) / reference)
        listed = " / ".join(f"{r:.3f}" for r in simulated)
        spread = f"{min(simulated):.3f} to {max(simulated):.3f}"
        print(f"| {name} | {exact:.3f} | {listed} | {spread} |", flush=True)


if __name__ == "__main__":
    main()
