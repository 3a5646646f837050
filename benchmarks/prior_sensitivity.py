"""Sensitivity of held-out forecast accuracy to the prior of the trend's slope scale.

The slope scale $\\sigma_\\delta$ of `LocalLinearTrend` is weakly identified: the likelihood is
flat from 0 up to a small value, so its prior decides how much slope wander the forecast
carries. This script refits the `benchmarks/forecast_accuracy.py` set-up (LLT + Seasonal(12),
24 held-out months, NUTS 2 x 500/500) under several slope-scale priors, all in standardised
units with T the number of training steps, and reports the mean CRPS ratio against
statsmodels `UnobservedComponents` (MLE) fitted in the same run.

With `--origins K` each prior is scored instead at K forecast origins 12 months apart
(`forecast_accuracy.origin_splits`, seed 0): the geometric mean of the K ratios. The last
prior listed all but fixes the slope; it is a bound on what any slope prior could reach,
not a candidate.

With `--near-diffuse` every initial state gets a near-diffuse prior
(`forecast_accuracy.near_diffuse`, variance $10^4$) instead of bsts's own, to separate what
the slope prior costs from what the initial-state prior costs.

Usage:
    python benchmarks/prior_sensitivity.py --seeds 0 1
    python benchmarks/prior_sensitivity.py --origins 5 --priors "HalfNormal(T^-1.5)" \
        "HalfCauchy(T^-1.5)" "HalfNormal(T^-1.5 / 100)"
    python benchmarks/prior_sensitivity.py --near-diffuse --priors "HalfCauchy(T^-1.5)" \
        "HalfNormal(T^-1.5 / 100)"
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
import numpyro.distributions as dist
from forecast_accuracy import HOLDOUT, origin_splits, run_bsts, run_statsmodels, series

jax.config.update("jax_enable_x64", True)

PRIORS = {
    "HalfNormal(0.05)": lambda T: dist.HalfNormal(0.05),
    "HalfNormal(0.01)": lambda T: dist.HalfNormal(0.01),
    "HalfNormal(T^-1.5)": lambda T: dist.HalfNormal(T**-1.5),
    "Exponential(rate T^1.5)": lambda T: dist.Exponential(T**1.5),
    "HalfCauchy(T^-1.5)": lambda T: dist.HalfCauchy(T**-1.5),
    "HalfNormal(T^-1.5 / 100)": lambda T: dist.HalfNormal(T**-1.5 / 100),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--priors", nargs="+", default=list(PRIORS), choices=list(PRIORS))
    parser.add_argument("--origins", type=int, default=1, help="forecast origins, 12 months apart")
    parser.add_argument(
        "--near-diffuse", action="store_true", help="near-diffuse initial-state prior"
    )
    args = parser.parse_args()
    if args.origins > 1:
        across_origins(args.priors, args.origins, args.near_diffuse)
        return

    print("| slope-scale prior | series | CRPS ratio bsts / statsmodels, per seed | mean |")
    print("|---|---|---|---|")
    for name in ("co2", "airline"):
        values = series(name)
        train, test = values.iloc[:-HOLDOUT], np.asarray(values.iloc[-HOLDOUT:], float)
        reference, _ = run_statsmodels(train, test)
        for label in args.priors:
            prior = PRIORS[label](len(train))
            ratios = [
                run_bsts(train, test, seed, prior, args.near_diffuse)[0] / reference
                for seed in args.seeds
            ]
            listed = " / ".join(f"{r:.3f}" for r in ratios)
            print(f"| {label} | {name} | {listed} | {np.mean(ratios):.3f} |", flush=True)


def across_origins(priors: list[str], count: int, diffuse: bool = False) -> None:
    """Per prior and series: the ratio at each origin and their geometric mean."""
    print("| slope-scale prior | series | CRPS ratio per origin, latest first | geometric mean |")
    print("|---|---|---|---|")
    for name in ("co2", "airline"):
        splits = list(origin_splits(series(name), count))
        references = [run_statsmodels(train, test)[0] for _, train, test in splits]
        for label in priors:
            ratios = [
                run_bsts(train, test, 0, PRIORS[label](len(train)), diffuse)[0] / reference
                for (_, train, test), reference in zip(splits, references, strict=True)
            ]
            listed = " / ".join(f"{r:.3f}" for r in ratios)
            mean = float(np.exp(np.mean(np.log(ratios))))
            print(f"| {label} | {name} | {listed} | {mean:.3f} |", flush=True)


if __name__ == "__main__":
    main()
