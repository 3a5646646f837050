r"""Causal impact of an intervention (Brodersen et al., 2015, *Ann. Appl. Stat.* 9, 247-274).

The model (a local level, optional seasonality, and a static regression on control series
that the intervention did not affect) is fitted to the pre-period only. Its posterior
predictive forecast of the post-period, given the observed controls, is the counterfactual
$\tilde y_t$: what the target would have been without the intervention. Per posterior draw
$s$ the pointwise effect is $y_t - \tilde y^{(s)}_t$ and the cumulative effect its running sum
over the post-period; the summary's "average" row averages over the post-period, the
"cumulative" row sums. The relative effect is the posterior mean effect over the absolute
posterior mean counterfactual, $\bar e / |\bar{\tilde y}|$, as R's CausalImpact reports it,
and its interval is the effect's interval over the same denominator: so
`relative_effect` equals `(actual - predicted) / |predicted|` from the same table, a
negative relative effect is a drop even for a negative series, and the interval holds the
estimate. (A mean of per-draw ratios $e^{(s)} / |\tilde y^{(s)}|$ is not: its heavy tail,
from draws whose counterfactual comes near zero, once put +49% beside a drop from 124 to
100.)

The probability of an effect follows CausalImpact: with $A = \sum_t y_t$ and
$\tilde A^{(s)} = \sum_t \tilde y^{(s)}_t$ over the post-period, the one-sided tail area is
$p = \min\{P(\tilde A \ge A), P(\tilde A \le A)\}$, and `probability` is $1 - p$.

The counterfactual draws include observation noise, as CausalImpact's do, so the intervals
are predictive intervals for the effect on the observed series.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bsts.analysis._common import check_interval, locate, tails
from bsts.auto import infer_season
from bsts.components import LocalLevel, Regression, Seasonal
from bsts.forecast import forecast, one_step_predictions
from bsts.inference import Posterior, fit
from bsts.model import Model

__all__ = ["MIN_PRE_PERIOD", "CausalImpact", "causal_impact"]

_SEASONAL_RESIDUALS = 0.3
"""Residual autocorrelation at the seasonal lag above which a missing season is flagged."""

MIN_PRE_PERIOD = 10
"""Fewest observed pre-period points: a level, its noise and the regression need data."""

_SUMMARY_COLUMNS = (
    "actual",
    "predicted",
    "effect",
    "effect_lower",
    "effect_upper",
    "relative_effect",
    "relative_lower",
    "relative_upper",
)


@dataclass(frozen=True)
class CausalImpact:
    """The result of `causal_impact`.

    Attributes:
        posterior: the model fitted to the pre-period.
        actual: the observed target over the post-period.
        counterfactual: counterfactual draws over the post-period `(num_draws, n_post)`.
        interval: mass of the reported intervals.
    """

    posterior: Posterior
    actual: pd.Series
    counterfactual: np.ndarray
    interval: float

    def pre_fit(self) -> pd.DataFrame:
        """One-step-ahead predictions over the pre-period (`bsts.one_step_predictions`)."""
        return one_step_predictions(self.posterior)

    @property
    def effects(self) -> np.ndarray:
        """Pointwise effect draws `(num_draws, n_post)`."""
        return self.actual.to_numpy()[None, :] - self.counterfactual

    @property
    def probability(self) -> float:
        """Posterior probability of an effect, 1 - p with CausalImpact's one-sided p."""
        actual_sum = float(self.actual.sum())
        sums = self.counterfactual.sum(axis=1)
        p = min(np.mean(sums >= actual_sum), np.mean(sums <= actual_sum))
        return float(1.0 - p)

    def pointwise(self) -> pd.DataFrame:
        """Per post-period step: actual, counterfactual and effects with intervals.

        Returns:
            DataFrame indexed by time with columns actual, predicted, predicted_lower,
            predicted_upper, effect, effect_lower, effect_upper, cumulative_effect,
            cumulative_lower, cumulative_upper.
        """
        lower, upper = tails(self.counterfactual, self.interval)
        effects = self.effects
        e_lower, e_upper = tails(effects, self.interval)
        cumulative = np.cumsum(effects, axis=1)
        c_lower, c_upper = tails(cumulative, self.interval)
        return pd.DataFrame(
            {
                "actual": self.actual.to_numpy(),
                "predicted": self.counterfactual.mean(axis=0),
                "predicted_lower": lower,
                "predicted_upper": upper,
                "effect": effects.mean(axis=0),
                "effect_lower": e_lower,
                "effect_upper": e_upper,
                "cumulative_effect": cumulative.mean(axis=0),
                "cumulative_lower": c_lower,
                "cumulative_upper": c_upper,
            },
            index=self.actual.index,
        )

    def summary(self) -> pd.DataFrame:
        """Average and cumulative effect over the post-period, absolute and relative.

        Returns:
            DataFrame indexed by ["average", "cumulative"] with columns actual, predicted,
            effect, effect_lower, effect_upper, relative_effect, relative_lower,
            relative_upper (relative values are fractions: -0.2 is a 20% drop).
        """
        actual = self.actual.to_numpy()
        rows = {}
        for label, reduce in (("average", np.mean), ("cumulative", np.sum)):
            predicted = reduce(self.counterfactual, axis=1)
            effect = reduce(actual) - predicted
            e_lower, e_upper = tails(effect, self.interval)
            # Relative to the counterfactual's size, so its sign is the effect's sign.
            size = np.abs(predicted.mean())
            rows[label] = [
                float(reduce(actual)),
                float(predicted.mean()),
                float(effect.mean()),
                float(e_lower),
                float(e_upper),
                float(effect.mean() / size),
                float(e_lower / size),
                float(e_upper / size),
            ]
        return pd.DataFrame.from_dict(rows, orient="index", columns=list(_SUMMARY_COLUMNS))

    def report(self) -> str:
        """A short text report of the estimated effect."""
        table = self.summary()
        avg, cum = table.loc["average"], table.loc["cumulative"]
        pct = f"{self.interval:.0%}"
        significant = self.probability >= 1.0 - (1.0 - self.interval) / 2.0
        direction = "increase" if avg["effect"] > 0 else "decrease"
        verdict = (
            f"The effect is unlikely to be chance: the probability of a causal effect is "
            f"{self.probability:.1%}."
            if significant
            else f"The effect may be chance: the probability of a causal effect is only "
            f"{self.probability:.1%}, so the data do not show one clearly."
        )
        return "\n".join(
            [
                f"During the post-period ({len(self.actual)} points) the target averaged "
                f"{avg['actual']:.4g}. Without the intervention the model expects "
                f"{avg['predicted']:.4g}, so the estimated effect is {avg['effect']:.4g} "
                f"per point ({pct} interval [{avg['effect_lower']:.4g}, "
                f"{avg['effect_upper']:.4g}]), a relative {direction} of "
                f"{avg['relative_effect']:.1%} ({pct} interval [{avg['relative_lower']:.1%}, "
                f"{avg['relative_upper']:.1%}]).",
                f"Summed over the post-period the effect is {cum['effect']:.4g} ({pct} interval "
                f"[{cum['effect_lower']:.4g}, {cum['effect_upper']:.4g}]).",
                verdict,
                "This assumes the controls were not affected by the intervention and that "
                "their relation to the target held over the post-period.",
            ]
        )

    def plot(self, axes=None) -> Figure:
        """Three panels: observed vs counterfactual, pointwise effect, cumulative effect.

        Args:
            axes: three Axes to draw on (default a new figure).

        Returns:
            The Figure.
        """
        if axes is None:
            axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)[1]
        axes = list(np.ravel(axes))
        if len(axes) != 3:
            raise ValueError(f"axes must hold 3 Axes, got {len(axes)}")
        table = self.pointwise()
        pre = self.pre_fit().iloc[1:]  # the first step is predicted from the prior alone
        z = _normal_quantile(self.interval)
        band = f"{self.interval:.0%}"
        top, middle, bottom = axes
        top.plot(pre.index, pre["observed"], color="0.2", lw=1, label="observed")
        top.plot(self.actual.index, self.actual.to_numpy(), color="0.2", lw=1)
        top.plot(pre.index, pre["mean"], color="C0", lw=1, ls="--", label="one-step fit")
        _band_and_line(
            top, table, "predicted", "C0", 0.25, f"counterfactual {band}", "counterfactual"
        )
        residual = pre["observed"] - pre["mean"]
        middle.fill_between(
            pre.index, -z * pre["sd"], z * pre["sd"], color="0.8", lw=0, label="pre-period band"
        )
        middle.plot(pre.index, residual, color="0.4", lw=0.8)
        _band_and_line(middle, table, "effect", "C1", 0.3, f"effect {band}", "pointwise effect")
        _band_and_line(bottom, table, "cumulative_effect", "C2", 0.3, None, None, "cumulative")
        for ax in axes:
            ax.axvline(self.actual.index[0], color="0.5", ls=":", lw=1)
        for ax in (middle, bottom):
            ax.axhline(0.0, color="0.7", lw=0.8)
        top.set_ylabel("original")
        middle.set_ylabel("pointwise")
        bottom.set_ylabel("cumulative")
        top.legend(loc="best", frameon=False, fontsize=8)
        middle.legend(loc="best", frameon=False, fontsize=8)
        top.set_title(f"Causal impact (probability of an effect {self.probability:.1%})")
        return top.figure


def _warn_if_seasonal(posterior: Posterior, period: float | None) -> None:
    """Warn when the pre-period's one-step residuals repeat with the index's season.

    A counterfactual without the season it needs carries the seasonal swing as noise: its
    intervals widen and its level chases the swing. R's CausalImpact leaves the season to
    the user as well; this says when the data ask for one.
    """
    if period is None or period != round(period):
        return
    lag = int(period)
    residual = one_step_predictions(posterior)["residual"].to_numpy()
    residual = residual - np.nanmean(residual)
    pairs = residual[lag:] * residual[:-lag]
    count = int(np.sum(np.isfinite(pairs)))
    if count < 2 * lag:
        return
    autocorrelation = np.nanmean(pairs) / np.nanmean(residual**2)
    if autocorrelation > max(_SEASONAL_RESIDUALS, 2.5 / np.sqrt(count)):
        warnings.warn(
            f"the pre-period's one-step residuals are seasonal (autocorrelation "
            f"{autocorrelation:.2f} at lag {lag}) and the model has no seasonal component: "
            f"pass season={lag} for a tighter, less biased counterfactual",
            UserWarning,
            stacklevel=3,
        )


def _band_and_line(ax, table, column, color, alpha, band_label, line_label, bounds=None):
    """A central band (`{bounds}_lower`/`_upper`, default `{column}_...`) under its line."""
    bounds = column if bounds is None else bounds
    ax.fill_between(
        table.index,
        table[f"{bounds}_lower"],
        table[f"{bounds}_upper"],
        color=color,
        alpha=alpha,
        lw=0,
        label=band_label,
    )
    ax.plot(table.index, table[column], color=color, lw=1.5, label=line_label)


def _normal_quantile(interval: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + interval / 2.0))


def _periods(index: pd.Index, pre_period, post_period) -> tuple[int, int, int, int]:
    for name, period in (("pre_period", pre_period), ("post_period", post_period)):
        if not isinstance(period, (tuple, list)) or len(period) != 2:
            raise ValueError(f"{name} must be a (start, end) pair of times, got {period!r}")
    a = locate(index, pre_period[0], "pre_period start")
    b = locate(index, pre_period[1], "pre_period end")
    try:
        c = locate(index, post_period[0], "post_period start")
        d = locate(index, post_period[1], "post_period end")
    except ValueError as error:
        raise ValueError(f"post_period must lie inside the data: {error}") from None
    if b < a:
        raise ValueError(f"pre_period is inverted: {pre_period[0]!r} is after {pre_period[1]!r}")
    if d < c:
        raise ValueError(f"post_period is inverted: {post_period[0]!r} is after {post_period[1]!r}")
    if c <= b:
        raise ValueError(
            f"the periods overlap or are out of order: the post-period starts at "
            f"{index[c]}, not after the pre-period's end {index[b]}"
        )
    return a, b, c, d


def causal_impact(
    data: pd.DataFrame,
    target: str,
    pre_period,
    post_period,
    controls=(),
    *,
    season: int | None = None,
    observation: str = "gaussian",
    model: Model | None = None,
    interval: float = 0.95,
    method: str = "nuts",
    seed: int = 0,
    **fit_options,
) -> CausalImpact:
    """Estimate the effect of an intervention on `target` during `post_period`.

    Args:
        data: DataFrame with the target and the control columns (a time index).
        target: the target column.
        pre_period: `(start, end)` times of the pre-intervention period (in the index).
        post_period: `(start, end)` times of the post-intervention period (in the index,
            after the pre-period; rows between the two are skipped).
        controls: control columns, regressors unaffected by the intervention.
        season: add `Seasonal(season)` to the default model.
        observation: the default model's observation family (`bsts.Model`). For counts
            ("poisson", "negative_binomial") the controls act on the log rate, the
            counterfactual draws are counts, and effects are in counts (relative effects
            are ratios of mean counts).
        model: a custom model instead of LocalLevel (+ Seasonal) + Regression(controls);
            its covariates must be among the data's columns.
        interval: mass of the reported intervals (default 0.95, as CausalImpact).
        method: inference method for `bsts.fit` ("nuts", "svi" or "map").
        seed: random seed of the fit and the forecast.
        **fit_options: passed to `bsts.fit` (e.g. num_warmup, num_samples, num_chains).

    Returns:
        A `CausalImpact` with `summary()`, `probability`, `report()` and `plot()`.

    Raises:
        ValueError: inverted or overlapping periods, a post-period outside the data, fewer
            than `MIN_PRE_PERIOD` observed pre-period points, missing target values in the
            post-period, unknown or incomplete control columns.
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if target not in data.columns:
        raise ValueError(f"target column {target!r} is not in the data")
    interval = check_interval(interval)
    controls = [controls] if isinstance(controls, str) else list(controls)
    for column in controls:
        if column not in data.columns:
            raise ValueError(f"control column {column!r} is not in the data")
        if column == target:
            raise ValueError(f"the target {target!r} cannot be its own control")
    a, b, c, d = _periods(data.index, pre_period, post_period)
    pre = data.iloc[a : b + 1]
    observed_pre = int(pre[target].notna().sum())
    if observed_pre < MIN_PRE_PERIOD:
        raise ValueError(
            f"the pre-period has {observed_pre} observed points; at least {MIN_PRE_PERIOD} "
            "are needed to fit the counterfactual model: start it earlier"
        )
    post = data.iloc[c : d + 1]
    if post[target].isna().any():
        raise ValueError("the target has missing values in the post-period; drop those rows")
    if model is None:
        parts = [LocalLevel()]
        if season is not None:
            parts.append(Seasonal(season))
        if controls:
            parts.append(Regression(controls))
        model = Model(parts, observation=observation)
    elif season is not None or observation != "gaussian":
        raise ValueError(
            "give either season= / observation= or model=, not both: a custom model "
            "carries its own season and observation family"
        )
    posterior = fit(model, pre, target, method=method, seed=seed, **fit_options)
    if season is None and not any(isinstance(part, Seasonal) for part in model.components):
        _warn_if_seasonal(posterior, infer_season(pre.index))
    # Rows between the periods are forecast too (the state moves through them) and dropped.
    future = data.iloc[b + 1 : d + 1][model.covariate_columns]
    prediction = forecast(posterior, future=future, seed=seed + 1)
    counterfactual = prediction.draws[:, c - b - 1 :]
    return CausalImpact(posterior, post[target].astype(float), counterfactual, interval)
