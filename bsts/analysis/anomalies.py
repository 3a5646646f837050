r"""Anomalies: points the model did not expect, scored by one-step-ahead tail probability.

For posterior draw $s$ the Kalman filter gives the one-step-ahead prediction of $y_t$ from
$y_{<t}$: the signal's mean $m^{(s)}_t$ and variance $v^{(s)}_t$. With Gaussian noise of
variance $\sigma^{2(s)}$ the two-sided tail probability of the observation is

$$
p^{(s)}_t = 2\,\Phi\!\left(-\frac{|y_t - m^{(s)}_t|}{\sqrt{v^{(s)}_t + \sigma^{2(s)}}}\right),
\qquad p_t = \frac{1}{S}\sum_s p^{(s)}_t ,
$$

the posterior predictive probability of a value at least as far from the prediction as the
one seen. A point is flagged when $p_t <$ `threshold`.

Robust fits. With a Gaussian observation model an outlier inflates $\sigma$ and bends the
level towards itself, which hides it and its neighbours. Fit
`Model(components, observation="student_t")` instead: outliers get small mixing weights
$\lambda_t$ (see `bsts.observation.StudentT`) and no longer distort the states. The
weight of step $t$ has seen $y_t$ itself, so for scoring, the noise at step $t$ uses a
fresh weight from its prior $\text{Gamma}(\nu/2, \nu/2)$ (Monte Carlo over 256 fixed
draws per posterior draw), that is the Student-t predictive, while the filter up to $t-1$
keeps the fitted weights.

That predictive is heavy-tailed, so under it an outlier is, by design, less surprising: the
model expects a few. When outliers are rare contaminations of otherwise Gaussian noise,
`score="core"` scores against the Gaussian core of the robust fit instead (weight
$\lambda_t = 1$, noise variance $\sigma^2$): the states and $\sigma$ come from the
undistorted robust fit, and a point is flagged when it is surprising for a regular step.

Counts (`bsts.counts`). The filter of each draw's Laplace approximation predicts the
signal of step $t$ from the pseudo-observations before it, $\mathcal N(m_t, v_t)$, and
the count distribution is integrated against it (Gauss–Hermite): the tail probability is
$\min\{1, 2\min(P(Y_t \le y_t), P(Y_t \ge y_t))\}$ under that predictive, both ends
including the observed count, so a 0 when a 0 is likely is not flagged. The
approximation is centred at the mode of the whole series, which has seen $y_t$; that
makes the score slightly conservative. `score="core"` is the same as "predictive" there.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from jax.scipy.stats import norm
from matplotlib.axes import Axes

from bsts._compile import jit
from bsts.inference import Posterior
from bsts.observation import Observation, observation_params

__all__ = ["anomalies", "plot_anomalies"]


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold!r}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold!r}")
    return float(threshold)


SCORES = ("predictive", "core")


def _scores(post: Posterior, num_samples: int | None, seed: int, score: str) -> pd.DataFrame:
    if not isinstance(post, Posterior):
        raise TypeError(f"post must be a bsts Posterior (from bsts.fit), got {type(post).__name__}")
    total = post.num_chains * post.num_draws
    count = total if num_samples is None else int(num_samples)
    if count < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    # Evenly thinned, so that every chain contributes.
    chosen = np.linspace(0, total - 1, min(count, total)).round().astype(int)
    ssms = jax.tree_util.tree_map(lambda a: a[chosen], post.state_spaces())
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    observation = _scored_observation(post, score)
    params = observation_params({k: jnp.asarray(v[chosen]) for k, v in post.flat_draws().items()})
    keys = jax.random.split(jax.random.PRNGKey(seed), len(chosen))
    observed = ~np.isnan(post.series.y)
    means, variances, tails = _one_step(observation, ssms, params, keys, jnp.asarray(post.series.y))
    means, variances, tails = np.asarray(means), np.asarray(variances), np.asarray(tails)
    scale = post.series.scale
    sd = np.sqrt(variances.mean(axis=0) + means.var(axis=0)) * scale
    tail = np.where(observed, tails.mean(axis=0), np.nan)
    return pd.DataFrame(
        {
            "time": post.series.index,
            "value": post.series.to_original(post.series.y),
            "tail_probability": tail,
            "expected": post.series.to_original(means.mean(axis=0)),
            "sd": sd,
        }
    )


def _scored_observation(post: Posterior, score: str) -> Observation:
    """The observation model a score uses: the model's own, or its Gaussian core."""
    observation = post.model.observation
    return observation if score == "predictive" else observation.core


@jit(static_argnums=0)
def _one_step(observation: Observation, ssms, params, keys, y):
    """One-step predictive mean, variance and tail probability per draw and step."""

    def one(ssm, params, key):
        return observation.one_step_tail(key, ssm, y, params)

    return jax.vmap(one)(ssms, params, keys)


def anomalies(
    post: Posterior,
    threshold: float = 0.01,
    *,
    flagged_only: bool = True,
    score: str = "predictive",
    num_samples: int | None = 400,
    seed: int = 0,
) -> pd.DataFrame:
    """Points whose one-step-ahead predictive tail probability is below `threshold`.

    Args:
        post: a fitted posterior (Gaussian, `observation="student_t"` or a count model).
        threshold: flag points with tail probability below this.
        flagged_only: return only flagged points (default) or every time step (with a
            `flagged` column).
        score: "predictive" (the model's own one-step predictive; Student-t for a robust
            fit) or "core" (for a Student-t fit, the Gaussian core with weight 1; the same
            as "predictive" for a Gaussian fit). See the module docstring.
        num_samples: posterior draws to integrate over (evenly thinned; None for all).
        seed: seed of the Student-t weight draws (unused for Gaussian models).

    Returns:
        DataFrame with columns time, value, tail_probability, expected (the one-step
        predictive mean), lower and upper (a normal approximation of the central
        `1 - threshold` predictive interval, for plotting), one row per flagged point in
        time order. Missing observations are never flagged.

    Raises:
        TypeError: `post` is not a Posterior.
        ValueError: threshold outside (0, 1), an unknown score or a bad num_samples.
    """
    threshold = _check_threshold(threshold)
    table = _scores(post, num_samples, seed, score)
    z = float(norm.ppf(1.0 - threshold / 2.0))
    table["lower"] = table["expected"] - z * table["sd"]
    table["upper"] = table["expected"] + z * table["sd"]
    table = table.drop(columns="sd")
    table["flagged"] = table["tail_probability"] < threshold
    if flagged_only:
        return table[table["flagged"]].drop(columns="flagged").reset_index(drop=True)
    return table


def plot_anomalies(
    post: Posterior,
    threshold: float = 0.01,
    *,
    score: str = "predictive",
    num_samples: int | None = 400,
    seed: int = 0,
    ax: Axes | None = None,
) -> Axes:
    """The series, its one-step-ahead predictive band, and the flagged points circled.

    Args:
        post: a fitted posterior.
        threshold: tail probability below which a point is flagged.
        score: "predictive" or "core", as for `anomalies`.
        num_samples: posterior draws to integrate over.
        seed: seed of the Student-t weight draws.
        ax: Axes to draw on.

    Returns:
        The Axes.
    """
    table = anomalies(
        post, threshold, flagged_only=False, score=score, num_samples=num_samples, seed=seed
    )
    ax = ax if ax is not None else plt.subplots(figsize=(9, 4))[1]
    ax.fill_between(
        table["time"],
        table["lower"],
        table["upper"],
        color="C0",
        alpha=0.25,
        lw=0,
        label=f"one-step {1 - threshold:.0%} band",
    )
    ax.plot(table["time"], table["expected"], color="C0", lw=1, label="one-step prediction")
    ax.plot(table["time"], table["value"], ".", color="0.2", ms=3, label="observed")
    flagged = table[table["flagged"]]
    ax.plot(
        flagged["time"],
        flagged["value"],
        "o",
        mfc="none",
        color="C3",
        ms=8,
        label=f"tail probability < {threshold:g} ({len(flagged)})",
    )
    observation = post.model.observation
    scored = _scored_observation(post, score)
    core = ", scored on its Gaussian core" if scored != observation else ""
    ax.set_title(f"Anomalies ({observation.label} observation model{core})")
    ax.legend(loc="best", frameon=False)
    return ax
