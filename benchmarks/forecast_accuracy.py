"""Held-out forecast accuracy against statsmodels `UnobservedComponents` (MLE).

For CO2 (monthly, with its missing months) and airline passengers (log), fit local linear
trend + dummy seasonal(12) to all but the last 24 months and forecast those 24:

- **bsts**: NUTS (2 chains, 500 warm-up + 500 draws) with the default priors; the
  predictive is the exact mixture of the 1000 draws' Normal predictives
  (`Forecast.crps`, `Forecast.interval`), so it integrates over the posterior of the
  scales without the Monte Carlo error of simulated paths.
- **statsmodels**: `UnobservedComponents(level="local linear trend", seasonal=12)`, fitted
  by maximum likelihood (its default diffuse initialisation); Normal predictive from
  `get_forecast`, so parameter uncertainty is ignored.

Reported per series: mean CRPS over the 24 months (lower is better, in the series' units),
the coverage of the central 95% interval, and the bsts / statsmodels CRPS ratio.

With `--details` it prints, for the split above and seed 0, the four scales (statsmodels' MLE
against the bsts posterior mean) and the two parts of CRPS: the mean absolute error of the
point forecast (location) and the mean predictive standard deviation (spread). It then plugs
the MLE scales into bsts (one draw, no parameter uncertainty), which leaves the initial-state
prior as the only difference from statsmodels: once with bsts's own, once with a near-diffuse
one (variance $10^4$ on every initial state, as statsmodels' approximate diffuse
initialisation but smaller), so the CRPS ratio at the MLE shows what that prior costs.

With `--origins K` the comparison is repeated at K forecast origins, each 12 months before
the last (the first is the split above): one 24-month window is a single draw of the
future, and the origins show how much the ratio depends on which one.

With `--peer FILE` it scores instead a peer's per-draw Normal predictives saved by
`benchmarks/tfp_sts_forecast.py` (TensorFlow Probability `sts`), exactly as bsts's are
scored, against statsmodels fitted in the same run.

Usage:
    python benchmarks/forecast_accuracy.py
    python benchmarks/forecast_accuracy.py --seeds 0 1 2
    python benchmarks/forecast_accuracy.py --origins 5
    python benchmarks/forecast_accuracy.py --details     # where the CRPS gap comes from
    python benchmarks/forecast_accuracy.py --peer tfp_sts.npz
"""

from __future__ import annotations

import argparse
import warnings

import jax
import numpy as np
import statsmodels.api as sm

import bsts
from bsts import datasets
from bsts.data import prepare_series
from bsts.metrics import coverage, crps_gaussian_mixture, crps_normal
from bsts.mixture import mixture_quantiles, mixture_sd

jax.config.update("jax_enable_x64", True)

HOLDOUT = 24
SCALES = {  # statsmodels parameter -> bsts site
    "sigma2.irregular": "observation.scale",
    "sigma2.level": "trend.level_scale",
    "sigma2.trend": "trend.slope_scale",
    "sigma2.seasonal": "seasonal.scale",
}
NEAR_DIFFUSE_VARIANCE = 1e4


def series(name: str):
    """The target series: CO2 as is, airline passengers on the log scale."""
    data = datasets.load(name)
    column = data.columns[0]
    values = data[column]
    return np.log(values) if name == "airline" else values


def run_bsts(
    train, test, seed: int, slope_scale_prior=None, diffuse: bool = False
) -> tuple[float, float]:
    """Mean CRPS and 95% coverage of bsts (default priors unless a slope prior is given).

    With `diffuse`, every initial state gets the near-diffuse prior (`near_diffuse`).
    """
    model = bsts.LocalLinearTrend(slope_scale_prior=slope_scale_prior) + bsts.Seasonal(12)
    if diffuse:
        model = near_diffuse(model)
    post = bsts.fit(model, train, seed=seed, progress_bar=False)
    prediction = bsts.forecast(post, horizon=HOLDOUT, seed=seed)
    lower, upper = prediction.interval(0.95)
    return float(np.mean(prediction.crps(test))), coverage(lower, upper, test)


def fit_statsmodels(train):
    """The same structure fitted by MLE: `(fitted results, forecast mean, forecast sd)`."""
    model = sm.tsa.UnobservedComponents(
        np.asarray(train, float), level="local linear trend", seasonal=12
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(disp=False, maxiter=500)
    prediction = result.get_forecast(HOLDOUT)
    mean = np.asarray(prediction.predicted_mean)
    return result, mean, np.sqrt(np.asarray(prediction.var_pred_mean))


def score_normal(mean, sd, test) -> tuple[float, float]:
    """Mean CRPS and 95% coverage of a Normal predictive per step."""
    lower, upper = mean - 1.959964 * sd, mean + 1.959964 * sd
    return float(np.mean(crps_normal(mean, sd, test))), coverage(lower, upper, test)


def run_statsmodels(train, test) -> tuple[float, float]:
    _, mean, sd = fit_statsmodels(train)
    return score_normal(mean, sd, test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--origins", type=int, default=1, help="forecast origins, 12 months apart")
    parser.add_argument("--details", action="store_true", help="scales, location and spread")
    parser.add_argument("--peer", help="per-draw predictives from tfp_sts_forecast.py (.npz)")
    args = parser.parse_args()
    if args.peer:
        score_peer(args.peer)
        return
    if args.details:
        details(args.seeds[0])
        return
    if args.origins > 1:
        rolling_origins(args.origins, args.seeds[0])
        return

    print("| series | method | mean CRPS | 95% coverage | CRPS ratio bsts / statsmodels |")
    print("|---|---|---|---|---|")
    for name in ("co2", "airline"):
        values = series(name)
        train, test = values.iloc[:-HOLDOUT], np.asarray(values.iloc[-HOLDOUT:], float)
        sm_crps, sm_cover = run_statsmodels(train, test)
        for seed in args.seeds:
            crps, cover = run_bsts(train, test, seed)
            label = f"bsts NUTS (seed {seed})"
            print(f"| {name} | {label} | {crps:.4g} | {cover:.2f} | {crps / sm_crps:.3f} |")
        print(f"| {name} | statsmodels UC (MLE) | {sm_crps:.4g} | {sm_cover:.2f} | 1 |")


def details(seed: int) -> None:
    """Scales and the location / spread split of the forecasts, bsts against statsmodels."""
    for name in ("co2", "airline"):
        values = series(name)
        train, test = values.iloc[:-HOLDOUT], np.asarray(values.iloc[-HOLDOUT:], float)
        result, sm_mean, sm_sd = fit_statsmodels(train)
        mle = dict(zip(result.model.param_names, np.sqrt(result.params), strict=True))

        bsts_model = bsts.LocalLinearTrend() + bsts.Seasonal(12)
        post = bsts.fit(bsts_model, train, seed=seed, progress_bar=False)
        prediction = bsts.forecast(post, horizon=HOLDOUT, seed=seed)
        samples = post.samples
        print(f"\n{name}: scale | statsmodels MLE | bsts posterior mean")
        for sm_name, site in SCALES.items():
            print(f"  {site} | {mle[sm_name]:.3g} | {float(np.mean(samples[site])):.3g}")
        sm_error = np.mean(np.abs(test - sm_mean))
        bsts_error = np.mean(np.abs(test - prediction.mean()))
        print(
            f"  mean |error| of the point forecast: statsmodels {sm_error:.4g}, "
            f"bsts {bsts_error:.4g}"
        )
        print(
            f"  mean predictive sd: statsmodels {np.mean(sm_sd):.4g}, "
            f"bsts {np.mean(prediction.sd()):.4g}"
        )
        sm_crps, _ = score_normal(sm_mean, sm_sd, test)
        for label, model in (
            ("bsts initial prior", bsts_model),
            ("near-diffuse initial prior", near_diffuse(bsts_model)),
        ):
            plugged = bsts.forecast(plug_in(model, train, mle), horizon=HOLDOUT, seed=seed)
            ratio = float(np.mean(plugged.crps(test))) / sm_crps
            shift = np.max(np.abs(plugged.mean() - sm_mean))
            print(
                f"  at the MLE scales, {label}: CRPS ratio {ratio:.4f}, "
                f"largest point-forecast difference {shift:.2g}"
            )


def plug_in(model: bsts.Model, train, mle: dict) -> bsts.Posterior:
    """A one-draw posterior at statsmodels' MLE scales (standardised as bsts stores them)."""
    data = prepare_series(train, None, [])
    draws = {site: np.full((1, 1), mle[name] / data.scale) for name, site in SCALES.items()}
    return bsts.Posterior(model, data, "map", draws)


class NearDiffuse(bsts.Model):
    """The same model with initial-state covariance `NEAR_DIFFUSE_VARIANCE * I`."""

    def state_space(self, params, inputs):
        ssm = super().state_space(params, inputs)
        size = ssm.initial_cov.shape[-1]
        return ssm.replace(initial_cov=NEAR_DIFFUSE_VARIANCE * np.eye(size))


def near_diffuse(model: bsts.Model) -> bsts.Model:
    """`model` with a near-diffuse prior on every initial state."""
    return NearDiffuse(model.components, model.observation_scale_prior, model.observation)


def score_peer(path: str) -> None:
    """Mean CRPS and 95% coverage of a peer's saved mixture predictive, against statsmodels."""
    saved = np.load(path)
    print(
        "| series | method | mean CRPS | 95% coverage | CRPS ratio to statsmodels "
        "| point error | spread |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in ("co2", "airline"):
        values = series(name)
        train, test = values.iloc[:-HOLDOUT], np.asarray(values.iloc[-HOLDOUT:], float)
        _, sm_mean, sm_sd = fit_statsmodels(train)
        sm_crps, sm_cover = score_normal(sm_mean, sm_sd, test)
        means, sds = saved[f"{name}_means"], saved[f"{name}_sds"]
        crps = float(np.mean(crps_gaussian_mixture(means, sds, test)))
        lower, upper = mixture_quantiles(means, sds, [0.025, 0.975])
        cover = coverage(lower, upper, test)
        error = np.mean(np.abs(test - means.mean(axis=0)))
        spread = np.mean(mixture_sd(means, sds))
        print(
            f"| {name} | TFP sts NUTS | {crps:.4g} | {cover:.2f} | {crps / sm_crps:.3f} "
            f"| {error:.4g} | {spread:.4g} |"
        )
        sm_error = np.mean(np.abs(test - sm_mean))
        print(
            f"| {name} | statsmodels UC (MLE) | {sm_crps:.4g} | {sm_cover:.2f} | 1 "
            f"| {sm_error:.4g} | {np.mean(sm_sd):.4g} |"
        )


def origin_splits(values, count: int):
    """`(last training month, train, test)` at `count` origins 12 months apart, latest first."""
    for k in range(count):
        end = len(values) - HOLDOUT - 12 * k
        test = np.asarray(values.iloc[end : end + HOLDOUT], float)
        yield values.index[end - 1].strftime("%Y-%m"), values.iloc[:end], test


def rolling_origins(count: int, seed: int) -> None:
    """The CRPS ratio at `count` origins 12 months apart, and its geometric mean."""
    print("| series | last training month | bsts CRPS | statsmodels CRPS | ratio |")
    print("|---|---|---|---|---|")
    for name in ("co2", "airline"):
        ratios = []
        for month, train, test in origin_splits(series(name), count):
            sm_crps, _ = run_statsmodels(train, test)
            crps, _ = run_bsts(train, test, seed)
            ratios.append(crps / sm_crps)
            print(f"| {name} | {month} | {crps:.4g} | {sm_crps:.4g} | {ratios[-1]:.3f} |")
        mean = float(np.exp(np.mean(np.log(ratios))))
        print(f"| {name} | geometric mean over {count} origins | | | **{mean:.3f}** |")


if __name__ == "__main__":
    main()
