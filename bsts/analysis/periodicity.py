r"""Is there a periodicity, and at what period? A period scan and a with/without comparison.

`period_scan` fits, for every candidate period $p$, the model

$$
y_t = \mu_t + \sum_{j=1}^{K} a_{j,t} + \varepsilon_t
$$

(a `LocalLevel` plus a `FourierSeasonal`-type block whose harmonics rotate by
$2\pi j \Delta_t / p$, so uneven sampling is exact) and scores it by the Laplace
approximation of its log evidence in the unconstrained (log-scale) parameters
$\theta = (\log\sigma_\mu, \log\sigma_s, \log\sigma_\varepsilon)$:

$$
\log p(y \mid p) \approx \log p(y, \hat\theta) + \tfrac{k}{2}\log 2\pi
- \tfrac12 \log\det\big(-\nabla^2 \log p(y, \hat\theta)\big),
$$

with $\hat\theta$ the posterior mode (BFGS) and $\log p(y \mid \theta)$ the exact Kalman
marginal likelihood (the seasonal states are integrated out, with prior
$\mathcal N(0, I)$ on the standardised scale). `delta` is the score minus that of the same
model without the seasonal block: a log Bayes factor for "a periodicity at $p$" against
"none". The period is a traced argument of one jitted, vmapped function, so a scan over
many periods compiles once.

The `lombscargle` column is the normalised Lomb–Scargle periodogram of the mean-removed
observations (`scipy.signal.lombscargle`), a classical cross-check: its peak should match
the scan's when the signal is a stable sinusoid.

`compare_seasonal` answers the yes/no question with full posteriors: it fits both models
with `bsts.fit` and compares them by PSIS-LOO on the pointwise one-step-ahead
log-likelihood $\log p(y_t \mid y_{<t})$ (through `bsts._arviz`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from scipy.signal import lombscargle

from bsts import _arviz
from bsts._compile import jit
from bsts.analysis._common import elapsed_steps
from bsts.components import Block, FourierSeasonal, LocalLevel
from bsts.data import SeriesData, prepare_series
from bsts.inference import fit
from bsts.kalman import log_likelihood
from bsts.model import Model, assemble

__all__ = ["compare_seasonal", "period_scan", "plot_period_scan"]

_START = (0.1, 0.05, 0.5)  # level, seasonal and noise scales where Newton starts (standardised)
_ITERATIONS = 40
_GRADIENT_TOLERANCE = 1e-3  # in nats per unit log-scale: a mode, not a stalled step


def _blocks(scales, period, dt, initial_level, harmonics: int) -> list[Block]:
    """A local level and (when harmonics > 0) a rotating seasonal block, all traceable.

    Built here rather than from `LocalLevel` / `FourierSeasonal` because those take their
    period and time steps as concrete values; here both are traced, so one compilation
    serves every period and every series of the same length.
    """
    T = dt.shape[0]
    step_out = jnp.concatenate([dt[1:], jnp.ones(1)])  # the step out of each time
    blocks = [
        Block(
            jnp.ones((T, 1, 1)),
            (scales[0] ** 2 * step_out)[:, None, None],
            jnp.ones((T, 1)),
            jnp.reshape(initial_level, (1,)),
            jnp.ones((1, 1)),
        )
    ]
    if harmonics:
        K = harmonics
        angle = 2.0 * jnp.pi * step_out[:, None] * jnp.arange(1, K + 1) / period  # (T, K)
        c, s = jnp.cos(angle), jnp.sin(angle)
        pairs = jnp.stack([jnp.stack([c, s], -1), jnp.stack([-s, c], -1)], -2)  # (T, K, 2, 2)
        transition = jnp.zeros((T, 2 * K, 2 * K))
        for j in range(K):
            transition = transition.at[:, 2 * j : 2 * j + 2, 2 * j : 2 * j + 2].set(pairs[:, j])
        loading = np.zeros(2 * K)
        loading[::2] = 1.0
        blocks.append(
            Block(
                transition,
                (scales[1] ** 2 * step_out)[:, None, None] * jnp.eye(2 * K),
                jnp.broadcast_to(loading, (T, 2 * K)),
                jnp.zeros(2 * K),
                jnp.eye(2 * K),
            )
        )
    return blocks


def _negative_log_joint(u, period, y, dt, initial_level, priors, harmonics: int):
    """Minus the log joint of the log-scales (log-Jacobian included), for one period."""
    scales = jnp.exp(u)
    log_prior = sum(prior.log_prob(scale) for prior, scale in zip(priors, scales, strict=True))
    blocks = _blocks(scales, period, dt, initial_level, harmonics)
    ssm = assemble(blocks, jnp.zeros(dt.shape[0]), scales[-1] ** 2, dt.shape[0])
    value = jnp.sum(log_likelihood(ssm, y)) + log_prior + jnp.sum(u)
    # A trial step far out (an overflowing scale) counts as impossible, not as NaN.
    return -jnp.where(jnp.isfinite(value), value, -1e10)


def _mode(f, start, iterations: int = _ITERATIONS):
    """Minimise `f` over a few parameters by trust-region Newton.

    The Hessian's eigenvalues are taken in absolute value (so saddles are escaped), steps
    are clipped to the radius, which grows on success and shrinks on failure. A fixed
    number of iterations keeps it cheap to vmap.
    """

    def newton(carry, _):
        u, value, radius = carry
        g = jax.grad(f)(u)
        w, V = jnp.linalg.eigh(jax.hessian(f)(u))
        step = -V @ ((V.T @ g) / jnp.maximum(jnp.abs(w), 1e-6))
        norm = jnp.linalg.norm(step)
        step = step * jnp.minimum(1.0, radius / jnp.maximum(norm, 1e-12))
        trial = f(u + step)
        better = trial < value
        u = jnp.where(better, u + step, u)
        value = jnp.where(better, trial, value)
        radius = jnp.where(better, jnp.minimum(2.0 * radius, 4.0), 0.25 * radius)
        return (u, value, radius), None

    (u, value, _), _ = jax.lax.scan(newton, (start, f(start), 1.0), None, length=iterations)
    gradient = jnp.linalg.norm(jax.grad(f)(u))
    return u, value, gradient


def _laplace_evidence(period, y, dt, initial_level, priors, harmonics: int):
    k = len(priors)
    start = jnp.log(jnp.asarray(_START if harmonics else _START[::2]))

    def f(u):
        return _negative_log_joint(u, period, y, dt, initial_level, priors, harmonics)

    u, value, gradient = _mode(f, start)
    sign, logdet = jnp.linalg.slogdet(jax.hessian(f)(u))
    evidence = -value + 0.5 * k * jnp.log(2.0 * jnp.pi) - 0.5 * logdet
    return jnp.where(sign > 0, evidence, jnp.nan), gradient, jnp.exp(u)


@jit(static_argnames=("harmonics",))
def _scan_jit(periods, y, dt, initial_level, priors, harmonics: int):
    baseline, _, _ = _laplace_evidence(
        jnp.ones(()), y, dt, initial_level, (priors[0], priors[2]), 0
    )
    scores, gradients, scales = jax.vmap(
        lambda p: _laplace_evidence(p, y, dt, initial_level, priors, harmonics)
    )(periods)
    return baseline, scores, gradients, scales


def _scan_scores(series: SeriesData, steps: np.ndarray, harmonics: int, seasonal_prior):
    observed = series.y[~np.isnan(series.y)]
    priors = (
        LocalLevel().scale_prior,
        seasonal_prior,
        Model([LocalLevel()]).observation_scale_prior,
    )
    baseline, scores, gradients, scales = _scan_jit(
        jnp.asarray(steps, float),
        jnp.asarray(series.y),
        jnp.asarray(series.dt, float),
        jnp.asarray(observed[0], float),
        priors,
        harmonics,
    )
    converged = np.asarray(gradients) < _GRADIENT_TOLERANCE
    return float(baseline), np.asarray(scores), converged, np.asarray(scales)


def _period_steps(periods, series: SeriesData) -> tuple[np.ndarray, np.ndarray]:
    """Candidate periods in units of the series' typical step, and as the user gave them."""
    if isinstance(periods, (str, bytes)) or np.ndim(periods) == 0:
        periods = [periods]
    given = list(periods)
    if not given:
        raise ValueError("periods is empty: give at least one candidate period")
    durations = [isinstance(p, (pd.Timedelta, np.timedelta64)) for p in given]
    if any(durations):
        if not all(durations):
            raise ValueError("periods must be all numbers or all pd.Timedelta")
        if not isinstance(series.index, pd.DatetimeIndex):
            raise ValueError("pd.Timedelta periods need a DatetimeIndex; give numbers instead")
        step = series.step
        if not isinstance(step, pd.Timedelta):  # a regular index keeps a calendar offset
            step = pd.Timedelta(series.index[1] - series.index[0])
        steps = np.array([pd.Timedelta(p) / step for p in given], float)
        return steps, np.array(given, dtype=object)
    for p in given:
        if isinstance(p, bool) or not isinstance(p, (int, float, np.number)) or not np.isfinite(p):
            raise ValueError(f"periods must be finite numbers or pd.Timedelta, got {p!r}")
    values = np.asarray(given, float)
    if isinstance(series.index, pd.DatetimeIndex):
        return values.copy(), values  # numbers of typical steps
    return values / float(series.step), values  # in the units of a numeric index


def _check_periods(steps: np.ndarray, series: SeriesData, harmonics: int) -> None:
    if series.regular:
        shortest, why = 2.0, "two sampling steps (the Nyquist limit of an even grid)"
    else:
        shortest, why = float(np.min(series.dt[1:])), "the shortest sampling step"
    too_short = steps[steps / harmonics <= shortest]
    if too_short.size:
        raise ValueError(
            f"candidate period(s) {too_short[:5].tolist()} (in steps, divided by "
            f"harmonics={harmonics}) are not longer than {why} ({shortest:.4g} steps): the "
            "data cannot resolve them; remove them or lower harmonics"
        )


def period_scan(
    data,
    periods,
    target: str | None = None,
    *,
    harmonics: int = 1,
    seasonal_scale_prior=None,
) -> pd.DataFrame:
    """Score candidate periods by the Laplace-approximate evidence of a seasonal model.

    Args:
        data: a pandas Series or a DataFrame with `target=`; even or uneven index.
        periods: candidate periods: for a numeric index, numbers in the index's units; for
            a DatetimeIndex, `pd.Timedelta`s, or numbers of typical steps (the median gap
            on uneven data).
        target: the target column of a DataFrame.
        harmonics: harmonics K of the seasonal block (1 is a sinusoid; with K > 1 a period
            p also fits at 2p, 3p, ...).
        seasonal_scale_prior: prior of the seasonal random-walk scale (standardised);
            default that of `FourierSeasonal`, HalfNormal(0.05).

    Returns:
        DataFrame, one row per candidate in the order given: period (as given),
        period_steps, score (Laplace log evidence, nats), delta (score minus the no-seasonal
        model's: a log Bayes factor), lombscargle (normalised Lomb–Scargle power),
        converged (BFGS success), amplitude_scale (fitted seasonal random-walk scale,
        original units).

    Raises:
        ValueError: bad data, empty or non-numeric periods, or a period not longer than
            the sampling step (two steps on an even grid), or bad harmonics.
    """
    series = prepare_series(data, target, [])
    if isinstance(harmonics, bool) or not isinstance(harmonics, (int, np.integer)):
        raise ValueError(f"harmonics must be a positive integer, got {harmonics!r}")
    if harmonics < 1:
        raise ValueError(f"harmonics must be a positive integer, got {harmonics!r}")
    steps, given = _period_steps(periods, series)
    if np.any(steps <= 0):
        raise ValueError(f"periods must be positive, got {given[steps <= 0][:5].tolist()}")
    _check_periods(steps, series, int(harmonics))
    prior = FourierSeasonal(2.0, 1, seasonal_scale_prior).scale_prior
    baseline, scores, success, scales = _scan_scores(series, steps, int(harmonics), prior)
    times = elapsed_steps(series.dt)
    observed = ~np.isnan(series.y)
    centred = series.y[observed] - series.y[observed].mean()
    power = lombscargle(times[observed], centred, 2.0 * np.pi / steps, normalize=True)
    frame = pd.DataFrame(
        {
            "period": given,
            "period_steps": steps,
            "score": scores,
            "delta": scores - baseline,
            "lombscargle": power,
            "converged": success,
            "amplitude_scale": scales[:, 1] * series.scale,
        }
    )
    frame.attrs.update(baseline_score=baseline, harmonics=int(harmonics))
    return frame


def plot_period_scan(scan: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """The scan's delta (log Bayes factor) against period, Lomb–Scargle on a twin axis.

    Args:
        scan: the table from `period_scan`.
        ax: Axes to draw on.

    Returns:
        The Axes of the scan (the periodogram is drawn on its twin x-axis).
    """
    missing = {"period_steps", "delta", "lombscargle"} - set(scan.columns)
    if missing:
        raise ValueError(f"scan must be a period_scan table; it lacks {sorted(missing)}")
    ax = ax if ax is not None else plt.subplots(figsize=(9, 4))[1]
    order = np.argsort(scan["period_steps"].to_numpy())
    given = scan["period"].to_numpy()
    if isinstance(given[0], (pd.Timedelta, np.timedelta64)):
        x, unit = np.array([pd.Timedelta(p) / pd.Timedelta(days=1) for p in given]), "days"
    else:
        x, unit = given.astype(float), "index units"
    x = x[order]
    ax.plot(x, scan["delta"].to_numpy()[order], color="C0", lw=1.5, label="log Bayes factor")
    ax.axhline(0.0, color="0.6", lw=0.8)
    best_row = int(np.nanargmax(scan["delta"].to_numpy()))
    best = scan.iloc[best_row]
    best_x = x[np.argsort(order)][best_row]
    ax.axvline(best_x, color="C0", ls=":", lw=1)
    ax.set_xlabel(f"period ({unit})")
    ax.set_ylabel("score - no-seasonal score (nats)", color="C0")
    twin = ax.twinx()
    twin.plot(x, scan["lombscargle"].to_numpy()[order], color="C1", lw=1, alpha=0.8)
    twin.set_ylabel("Lomb-Scargle power", color="C1")
    ax.set_title(f"Period scan: best {best_x:.6g} {unit} (delta {best['delta']:.1f} nats)")
    return ax


def compare_seasonal(
    data,
    period: float,
    target: str | None = None,
    *,
    harmonics: int = 1,
    method: str = "nuts",
    seed: int = 0,
    **fit_options,
) -> pd.DataFrame:
    """PSIS-LOO comparison of LocalLevel with and without FourierSeasonal(period, harmonics).

    Args:
        data: a pandas Series or DataFrame with `target=`.
        period: the period, in the units `period_scan` takes (index units for a numeric
            index; a `pd.Timedelta` or a number of typical steps for a DatetimeIndex).
        target: the target column of a DataFrame.
        harmonics: harmonics of the seasonal term.
        method: inference method of `bsts.fit`.
        seed: seed of both fits.
        **fit_options: passed to `bsts.fit`.

    Returns:
        DataFrame indexed by "seasonal" and "no_seasonal" with columns elpd (PSIS-LOO on
        the one-step-ahead pointwise log-likelihood, nats), se, p_loo, max_pareto_k,
        elpd_diff (this row minus the best row) and diff_se (its standard error from the
        pointwise differences); sorted best first.
    """
    series = prepare_series(data, target, [])
    steps, _ = _period_steps(period, series)
    if steps.size != 1:
        raise ValueError(f"compare_seasonal takes one period, got {period!r}")
    _check_periods(steps, series, harmonics)
    models = {
        "seasonal": Model([LocalLevel(), FourierSeasonal(float(steps[0]), harmonics)]),
        "no_seasonal": Model([LocalLevel()]),
    }
    results, pointwise = {}, {}
    for label, model in models.items():
        post = fit(model, data, target, method=method, seed=seed, **fit_options)
        res = _arviz.loo(post.to_arviz())
        results[label] = res
        pointwise[label] = res.pointwise
    best = max(results, key=lambda k: results[k].elpd)
    rows = {}
    for label, res in results.items():
        diff = pointwise[label] - pointwise[best]
        rows[label] = {
            "elpd": res.elpd,
            "se": res.se,
            "p_loo": res.p_loo,
            "max_pareto_k": float(np.nanmax(res.pareto_k)),
            "elpd_diff": float(diff.sum()),
            "diff_se": float(math.sqrt(diff.size * np.var(diff))),
        }
    return pd.DataFrame.from_dict(rows, orient="index").sort_values("elpd", ascending=False)
