r"""Change points: level shifts and slope changes under a horseshoe prior on the innovations.

`ChangePointTrend` is a local level (optionally with a slope) whose innovations have one
scale per step, shrunk by a regularised horseshoe (Piironen & Vehtari, 2017):

$$
\mu_{t+1} = \mu_t + \delta_t \Delta_t + \eta_t, \quad
\eta_t \sim \mathcal N(0, \tau_\mu^2 \tilde\lambda_{t}^2 \Delta_t), \quad
\tilde\lambda_t^2 = \frac{c^2 \lambda_t^2}{c^2 + \tau_\mu^2 \lambda_t^2}, \quad
\lambda_t \sim \mathcal C^+(0, 1), \quad \tau_\mu \sim \mathcal C^+(0, \tau_0),
$$

and likewise $\delta_{t+1} = \delta_t + \zeta_t$ for the slope when `slope=True`. Most
innovations are shrunk to about zero, so the level is piecewise constant (or piecewise
linear) and the few large innovations are the change points. The innovations' time-varying
covariance is exact in the Kalman filter, so only the scales are sampled.

Change-point probability. From simulation-smoothed state paths the innovation into step
$t$, $\eta_{t-1} = \mu_t - \mu_{t-1} - \delta_{t-1}\Delta$, is known per path; the reported
probability is

$$
P(\text{shift at } t \mid y) = P\big(|\eta_{t-1}| > h_\mu \ \text{or}\ |\zeta_{t-1}| > h_\delta
\,\big|\, y\big),
$$

the posterior mass of a shift at least as large as the thresholds $h_\mu$ (`min_shift`,
default the posterior mean observation-noise sd: a jump the size of the noise) and
$h_\delta$ (`min_slope_shift`, default a tenth of it per step: a slope change that moves the
level by one noise sd within ten steps). A threshold in data units answers "did the level
move by at least this much here", which the shrinkage factor of the horseshoe, whose
meaning depends on how many later observations inform the step, does not. When the time of
a shift is uncertain its probability spreads over neighbouring steps; sum over a window for
the probability of a shift within it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from matplotlib.figure import Figure

from bsts._compile import jit
from bsts.analysis._common import state_draws, tails
from bsts.components import (
    UNIT_SCALE,
    Block,
    Component,
    horseshoe_variance,
    transition_steps,
)
from bsts.inference import Posterior, fit
from bsts.model import OBSERVATION_SCALE, Model
from bsts.observation import observation_params

__all__ = ["ChangePointTrend", "change_points", "plot_change_points"]

_NOISE_DRAWS = 100
"""Posterior draws behind a count model's default threshold."""


class ChangePointTrend(Component):
    r"""A level (and optionally a slope) with horseshoe-shrunk, per-step innovations.

    Args:
        slope: also model slope changes (a local linear trend); default only level shifts.
        level_global_scale: $\tau_0$ of the level's global scale, standardised units;
            default 1 / T (a handful of shifts expected).
        slope_global_scale: the same for the slope; default 0.1 / T.
        slab_scale: $c$, the largest innovation scale, standardised units; default 2 (a
            shift larger than two standard deviations of the whole series is implausible).
        name: site prefix; default "change".
    """

    kind = "change"
    is_level = True
    # One innovation variance per step, with a global scale of 1 / T: padding would add
    # parameters and shrink the prior.
    paddable = False

    def __init__(
        self,
        slope: bool = False,
        level_global_scale: float | None = None,
        slope_global_scale: float | None = None,
        slab_scale: float = 2.0,
        name: str | None = None,
    ):
        super().__init__(name)
        for what, value in (
            ("level_global_scale", level_global_scale),
            ("slope_global_scale", slope_global_scale),
            ("slab_scale", slab_scale),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            ):
                raise ValueError(f"{what} must be a positive number, got {value!r}")
        self.slope = bool(slope)
        self.level_global_scale = level_global_scale
        self.slope_global_scale = slope_global_scale
        self.slab_scale = float(slab_scale)

    @property
    def has_slope(self) -> bool:
        """Whether the second state is a slope."""
        return self.slope

    @property
    def state_size(self) -> int:
        """1 (level) or 2 (level and slope)."""
        return 2 if self.slope else 1

    @property
    def units(self):
        """Global scales are in the target's units; local scales are internal sites."""
        out = {"level_global": UNIT_SCALE}
        if self.slope:
            out["slope_global"] = UNIT_SCALE
        return out

    def _shrunk(self, prefix: str, part: str, global_scale: float, count: int):
        tau = numpyro.sample(f"{prefix}.{part}_global", dist.HalfCauchy(global_scale))
        local = numpyro.sample(
            f"{prefix}.{part}_local", dist.HalfCauchy(jnp.ones(count)).to_event(1)
        )
        variances = horseshoe_variance(tau, local, self.slab_scale**2)
        # A deterministic site, so that a Posterior rebuilds the model from its draws.
        return numpyro.deterministic(f"{prefix}.{part}_variances", variances)

    def sample(self, prefix, inputs):
        """Per-step innovation variances (standardised units), `(T - 1,)` each."""
        T = inputs.num_timesteps
        count = T - 1  # the innovation out of the last step is never used
        params = {
            "level_variances": self._shrunk(
                prefix, "level", self.level_global_scale or 1.0 / T, count
            )
        }
        if self.slope:
            params["slope_variances"] = self._shrunk(
                prefix, "slope", self.slope_global_scale or 0.1 / T, count
            )
        return params

    def block(self, params, inputs):
        """A time-varying level (and slope) block with the per-step variances."""
        T = inputs.num_timesteps
        steps = transition_steps(inputs)
        dt = jnp.ones(T) if steps is None else steps

        def per_step(variances):
            return jnp.concatenate([variances, jnp.zeros(1)]) * dt

        if not self.slope:
            return Block(
                jnp.ones((T, 1, 1)),
                per_step(params["level_variances"])[:, None, None],
                jnp.ones((T, 1)),
                jnp.array([inputs.initial_level]),
                jnp.ones((1, 1)),
            )
        variances = jnp.stack(
            [per_step(params["level_variances"]), per_step(params["slope_variances"])], axis=-1
        )
        transition = jnp.broadcast_to(jnp.eye(2), (T, 2, 2)).at[:, 0, 1].set(dt)
        return Block(
            transition,
            jnp.einsum("ti,ij->tij", variances, jnp.eye(2)),
            jnp.broadcast_to(jnp.array([1.0, 0.0]), (T, 2)),
            jnp.array([inputs.initial_level, 0.0]),
            jnp.diag(jnp.array([1.0, 0.1**2])),
        )


def _posterior(
    data, target, slope, components, observation, method, seed, fit_options
) -> Posterior:
    if isinstance(data, Posterior):
        if target is not None or components or fit_options or observation != "gaussian":
            raise ValueError(
                "with a fitted Posterior, give no target, components, observation or fit options"
            )
        return data
    if not isinstance(data, (pd.Series, pd.DataFrame)):
        raise TypeError(
            "data must be a pandas Series/DataFrame or a Posterior of a model with a "
            f"ChangePointTrend, got {type(data).__name__}"
        )
    model = Model([ChangePointTrend(slope=slope), *components], observation=observation)
    options = {"num_warmup": 300, "num_samples": 300, "num_chains": 1, **fit_options}
    if method != "nuts":
        options = {k: v for k, v in options.items() if k not in ("num_warmup", "num_chains")}
    return fit(model, data, target, method=method, seed=seed, **options)


def _innovations(post: Posterior, num_samples: int, seed: int):
    found = [(n, c) for n, c in post.model if isinstance(c, ChangePointTrend)]
    if not found:
        raise ValueError("the posterior's model has no ChangePointTrend component")
    name, component = found[0]
    states = state_draws(post, num_samples, seed)
    sl = post.model.layout(post.inputs).slices[name]
    scale = post.series.scale
    level = states[:, :, sl.start] * scale
    dt = post.series.dt
    if component.slope:
        slope = states[:, :, sl.start + 1] * scale
        level_shift = level[:, 1:] - level[:, :-1] - slope[:, :-1] * dt[None, 1:]
        slope_shift = slope[:, 1:] - slope[:, :-1]
    else:
        level_shift, slope_shift = level[:, 1:] - level[:, :-1], None
    return level + post.series.location, level_shift, slope_shift


def _noise_sd(post: Posterior) -> float:
    """One observation's noise sd, the default shift threshold, in the level's units.

    The posterior mean of the observation scale for the Gaussian families. For counts (no
    scale) the analogue on the link scale: the root mean variance of the Laplace
    approximation's pseudo-observations, over observed steps and up to 100 draws, i.e. the
    link-scale noise of one count (1 / sqrt(rate) for a Poisson rate).
    """
    observation = post.model.observation
    if observation.has_scale:
        return float(np.mean(post.samples[OBSERVATION_SCALE]))
    total = post.num_chains * post.num_draws
    chosen = np.arange(min(total, _NOISE_DRAWS))
    ssms = jax.tree_util.tree_map(lambda a: a[chosen], post.state_spaces())
    params = observation_params({k: v[chosen] for k, v in post.flat_draws().items()})
    y = jnp.asarray(post.series.y)
    variances = jit(
        jax.vmap(lambda ssm, p: observation.approximation(ssm, y, p)[0].observation_var)
    )(ssms, params)
    observed = np.isfinite(np.asarray(post.series.y))
    variances = np.broadcast_to(np.asarray(variances), (len(chosen), observed.size))
    return float(np.sqrt(np.mean(variances[:, observed])))


def change_points(
    data,
    target: str | None = None,
    *,
    slope: bool = False,
    components=(),
    observation: str = "gaussian",
    min_shift: float | None = None,
    min_slope_shift: float | None = None,
    method: str = "nuts",
    num_samples: int = 400,
    seed: int = 0,
    **fit_options,
) -> pd.DataFrame:
    """Posterior probability of a level shift (or slope change) at every time step.

    Args:
        data: a pandas Series / DataFrame (a `ChangePointTrend` model is fitted), or a
            `Posterior` of a model that has a `ChangePointTrend`.
        target: the target column of a DataFrame.
        slope: detect slope changes as well as level shifts.
        components: extra components for the fitted model (e.g. `Seasonal(12)`).
        observation: the fitted model's observation family (`bsts.Model`): for counts
            ("poisson", "negative_binomial", "bernoulli") the level is the log rate (or log
            odds), so shifts and thresholds are in those units: a shift of 0.69 doubles
            the rate.
        min_shift: smallest level shift that counts, original units, or link units for
            counts (default one observation's noise sd: the posterior mean
            observation-noise sd, or for counts the link-scale noise of one count, about
            1 / sqrt(rate) for Poisson).
        min_slope_shift: smallest slope change that counts, per step (default a tenth of
            `min_shift`).
        method: inference method of the fit (NUTS by default: the horseshoe's posterior is
            far from Gaussian, so SVI and MAP are rough here).
        num_samples: simulation-smoother paths.
        seed: seed of the fit and of the smoother.
        **fit_options: passed to `bsts.fit` (default 300 warm-up and 300 draws, 1 chain).

    Returns:
        DataFrame, one row per time step: time, probability (of a level shift or slope
        change arriving at that step; 0 at the first), level_probability, shift (posterior
        mean level innovation, original units) and, with a slope, slope_probability and
        slope_shift. `attrs` holds the thresholds used (`min_shift`, `min_slope_shift`).
        To plot or re-query without refitting, fit once with `bsts.fit` on a model holding
        a `ChangePointTrend` and pass that Posterior.

    Raises:
        TypeError: data is neither pandas nor a Posterior.
        ValueError: non-positive thresholds or a Posterior without a ChangePointTrend.
    """
    for what, value in (("min_shift", min_shift), ("min_slope_shift", min_slope_shift)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
        ):
            raise ValueError(f"{what} must be a positive number (original units), got {value!r}")
    post = _posterior(data, target, slope, list(components), observation, method, seed, fit_options)
    _, level_shift, slope_shift = _innovations(post, num_samples, seed)
    h_level = _noise_sd(post) if min_shift is None else float(min_shift)
    h_slope = h_level / 10.0 if min_slope_shift is None else float(min_slope_shift)
    level_hit = np.abs(level_shift) > h_level
    hit = level_hit.copy()
    table = {"time": post.series.index}
    if slope_shift is not None:
        slope_hit = np.abs(slope_shift) > h_slope
        hit |= slope_hit
    table["probability"] = np.concatenate([[0.0], hit.mean(axis=0)])
    table["level_probability"] = np.concatenate([[0.0], level_hit.mean(axis=0)])
    table["shift"] = np.concatenate([[0.0], level_shift.mean(axis=0)])
    if slope_shift is not None:
        table["slope_probability"] = np.concatenate([[0.0], slope_hit.mean(axis=0)])
        table["slope_shift"] = np.concatenate([[0.0], slope_shift.mean(axis=0)])
    frame = pd.DataFrame(table)
    frame.attrs.update(min_shift=float(h_level), min_slope_shift=float(h_slope))
    return frame


def plot_change_points(
    post: Posterior,
    *,
    min_shift: float | None = None,
    min_slope_shift: float | None = None,
    interval: float = 0.9,
    num_samples: int = 400,
    seed: int = 0,
    axes=None,
) -> Figure:
    """Two panels: the data with the smoothed level, and the change-point probability.

    Args:
        post: a Posterior of a model with a `ChangePointTrend` (e.g. from `bsts.fit`).
        min_shift: as for `change_points`.
        min_slope_shift: as for `change_points`.
        interval: mass of the level's band.
        num_samples: simulation-smoother paths.
        seed: seed of the smoother.
        axes: two Axes to draw on.

    Returns:
        The Figure.
    """
    if not isinstance(post, Posterior):
        raise TypeError(f"post must be a bsts Posterior, got {type(post).__name__}")
    table = change_points(
        post,
        min_shift=min_shift,
        min_slope_shift=min_slope_shift,
        num_samples=num_samples,
        seed=seed,
    )
    level, _, _ = _innovations(post, num_samples, seed)
    # Counts: the level is the log rate (or log odds); plot the rate it implies.
    level = np.asarray(post.model.observation.mean_response(level))
    if axes is None:
        axes = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=[2, 1])[1]
    top, bottom = list(np.ravel(axes))
    index = post.series.index
    lower, upper = tails(level, interval)
    top.plot(index, post.series.to_original(post.series.y), ".", color="0.3", ms=4)
    top.fill_between(index, lower, upper, color="C0", alpha=0.3, lw=0)
    label = "smoothed level" if post.model.observation.standardise else "rate of the level"
    top.plot(index, level.mean(axis=0), color="C0", lw=1.5, label=label)
    top.set_title("Change points")
    top.legend(loc="best", frameon=False)
    bottom.bar(index, table["probability"], width=_bar_width(index), color="C3")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel(f"P(|shift| > {table.attrs['min_shift']:.3g})")
    return top.figure


def _bar_width(index: pd.Index):
    if len(index) < 2:
        return 0.8
    gaps = np.diff(index.values)
    return np.median(gaps) * 0.8
