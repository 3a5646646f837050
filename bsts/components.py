r"""Structural components: priors plus their block of the state-space model.

Every component contributes a block to a block-diagonal linear-Gaussian model (the letters
of `bsts.kalman` stay inside `Block`; components speak in semantic names). All priors are on
the standardised scale (the target divided by its standard deviation, see `bsts.data`);
`Posterior` reports parameters back in original units using each parameter's `unit`.

On an irregular index the time step $\Delta_t$ into each observation (in units of the
typical step) enters the transitions: random-walk variances grow as $\sigma^2 \Delta_t$,
trends advance by $\delta \Delta_t$, harmonics rotate by $2\pi j \Delta_t / p$ and an AR(1)
becomes an Ornstein–Uhlenbeck process. On a regular index $\Delta_t = 1$ and every block is
constant in time, which lets the likelihood use its steady-state fast path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, Float

__all__ = [
    "RESERVED_NAMES",
    "UNIT_COEFFICIENT",
    "UNIT_NONE",
    "UNIT_SCALE",
    "Autoregressive",
    "Block",
    "Component",
    "DynamicRegression",
    "FourierSeasonal",
    "LocalLevel",
    "LocalLinearTrend",
    "ModelInputs",
    "Regression",
    "Seasonal",
    "SemiLocalLinearTrend",
    "check_columns",
    "check_component_name",
    "horseshoe_variance",
    "transition_steps",
]


# Hashed by identity: NumPyro caches its compiled sampler by the model's arguments, so
# chains run one after the other share a single compilation.
@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Arrays a component needs to build its block (standardised units).

    Attributes:
        dt: time step into each observation, `(T,)`; `dt[0]` is unused.
        regular: whether every step is 1 (then blocks are built constant in time).
        covariates: covariate columns, each `(T,)`.
        initial_level: the first observed standardised value (the level's prior mean).
        num_timesteps: T.
        training: whether the program is being optimised by SVI (neural components then
            may run their training layout, see `bsts.neural`).
        gaps: the room the likelihood makes for missing steps before the last observation
            when it is traced without the series' values: 0, a count, or None for the
            exact filter (`max_gaps` of `bsts.kalman.marginal_log_likelihood`).
    """

    dt: np.ndarray
    regular: bool
    covariates: dict[str, np.ndarray]
    initial_level: float
    num_timesteps: int
    training: bool = False
    gaps: int | None = 0


@dataclass(frozen=True)
class Block:
    """One component's part of the state-space model.

    Matrices are constant `(d, d)` / `(d,)` or time-varying `(T, d, d)` / `(T, d)`; the
    transition at index t moves the state from step t to step t+1.
    """

    transition: Float[Array, "*T d d"]
    noise_cov: Float[Array, "*T d d"]
    loading: Float[Array, "*T d"]
    initial_mean: Float[Array, " d"]
    initial_cov: Float[Array, "d d"]


UNIT_SCALE = "scale"  # multiply by the target's standard deviation
UNIT_NONE = "none"  # dimensionless
UNIT_COEFFICIENT = "coefficient"  # target sd over the covariate's sd (per column)

# Names the model itself uses: the observation model's parameters live under
# "observation" (`bsts.observation.OBSERVATION`), and "y" is the observed site.
RESERVED_NAMES = frozenset({"observation", "y"})


def check_component_name(name) -> str:
    """A valid explicit component name: a non-empty string without '.', not reserved.

    Raises:
        ValueError: otherwise, saying which rule it breaks.
    """
    if not isinstance(name, str) or not name or "." in name:
        raise ValueError(f"component name must be a non-empty string without '.', got {name!r}")
    if name in RESERVED_NAMES:
        raise ValueError(
            f"component name {name!r} is reserved: the model itself uses it "
            f"({', '.join(sorted(RESERVED_NAMES))}); give the component another name"
        )
    return name


class Component:
    """Base class: a named piece of the structural model.

    Subclasses set `kind` (the default name), implement `sample` and `block`, and may add an
    observation offset (`offset`) and covariate columns (`columns`).

    Capabilities are declared here with their defaults, so that the model and the analyses
    ask a component instead of testing its class:

    - `is_level`: its first state is a level that loads on the observation with weight 1
      (and `has_slope`: its second state is that level's slope); `bsts.analysis.trend`
      reads these states, and level-driving components act on them.
    - `drives_level`: it rescales a level's innovations through `modulate` (`level` names
      the level, None for the model's first).
    - network hooks (`bsts.neural`): `point_estimated`, `param_sites`, `penalty_sites` and
      `attach_network`.
    - `paddable`: its parameters and priors do not depend on the series' length beyond
      `dt`, so a series padded with missing steps (`bsts.batch`) has the same posterior.
    """

    kind = "component"
    paddable: bool = True
    is_level: bool = False
    has_slope: bool = False
    drives_level: bool = False
    level: str | None = None
    point_estimated: bool = False

    def __init__(self, name: str | None = None):
        if name is not None:
            check_component_name(name)
        self.name = name

    @property
    def columns(self) -> list[str]:
        """Covariate columns this component reads."""
        return []

    @property
    def state_size(self) -> int:
        """Dimension of the component's state (0 for a component without states)."""
        return 0

    @property
    def units(self) -> dict[str, str]:
        """Unit of each parameter: how to map it back to original units."""
        return {}

    def needs_regular_grid(self) -> bool:
        """Whether the component only makes sense on an evenly spaced index."""
        return False

    def sample(self, prefix: str, inputs: ModelInputs) -> dict:
        """Draw this component's parameters as NumPyro sites named `{prefix}.{parameter}`."""
        raise NotImplementedError

    def block(self, params: dict, inputs: ModelInputs) -> Block | None:
        """The state block, or None for a component without states."""
        raise NotImplementedError

    def offset(self, params: dict, inputs: ModelInputs) -> Float[Array, " T"] | None:
        """A contribution added to the observation (e.g. static regression), or None."""
        return None

    def modulate(self, params: dict, inputs: ModelInputs, level: Block) -> Block:
        """The block of the level this component drives, changed (`drives_level`)."""
        return level

    def param_sites(self, prefix: str) -> list[str]:
        """The `numpyro.param` sites of point-estimated weights (learned by SVI)."""
        return []

    def penalty_sites(self, prefix: str) -> list[str]:
        """The `numpyro.factor` sites of the weight priors of point-estimated weights."""
        return []

    def attach_network(self, prefix: str, params: dict, network_params: dict) -> dict:
        """This component's parameters with any network put back (outside a trace)."""
        return params

    def __add__(self, other):
        # Lazy: bsts.model builds on this module, so importing it at the top is a cycle.
        from bsts.model import Model

        return Model([self]) + other

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _site(prefix: str, parameter: str, prior) -> Array:
    return numpyro.sample(f"{prefix}.{parameter}", prior)


def _or_default(prior, default):
    return default if prior is None else prior


def _check_prior(prior, what: str):
    if not isinstance(prior, dist.Distribution):
        raise ValueError(f"{what} must be a numpyro Distribution, got {type(prior).__name__}")
    return prior


class _OneScale(Component):
    """A component whose only parameter is one innovation scale, site `{name}.scale`."""

    scale_prior: dist.Distribution

    @property
    def units(self):
        return {"scale": UNIT_SCALE}

    def sample(self, prefix, inputs):
        return {"scale": _site(prefix, "scale", self.scale_prior)}


def _span(inputs: ModelInputs):
    """The length of the record in (typical) steps: T on a regular index.

    Traceable, so a padded batch (`bsts.many`) can carry each series' own span: padded
    steps have dt = 0.
    """
    return 1.0 + jnp.sum(jnp.asarray(inputs.dt)[1:])


def transition_steps(inputs: ModelInputs):
    """Dt for the transition out of each step (`dt[t+1]`), or None on a regular grid."""
    if inputs.regular:
        return None
    dt = jnp.asarray(inputs.dt)
    return jnp.append(dt[1:], jnp.ones((), dt.dtype))


class LocalLevel(_OneScale):
    r"""A random-walk level.

    $$
    \mu_{t+1} = \mu_t + \eta_t, \qquad \eta_t \sim \mathcal N(0, \sigma_\mu^2 \Delta_t),
    \qquad y_t \mathrel{+}= \mu_t .
    $$

    Args:
        scale_prior: prior of $\sigma_\mu$ (standardised units); default HalfNormal(0.5).
        name: site prefix; default "level".
    """

    kind = "level"
    is_level = True
    state_size = property(lambda self: 1)

    def __init__(self, scale_prior=None, name: str | None = None):
        super().__init__(name)
        self.scale_prior = _check_prior(
            _or_default(scale_prior, dist.HalfNormal(0.5)), "scale_prior"
        )

    def block(self, params, inputs):
        variance = params["scale"] ** 2
        steps = transition_steps(inputs)
        if steps is None:
            noise = jnp.reshape(variance, (1, 1))
            transition = np.ones((1, 1))
            loading = np.ones(1)
        else:
            noise = (variance * steps)[:, None, None]
            transition = jnp.ones((inputs.num_timesteps, 1, 1))
            loading = jnp.ones((inputs.num_timesteps, 1))
        return Block(
            transition, noise, loading, jnp.array([inputs.initial_level]), jnp.ones((1, 1))
        )


class LocalLinearTrend(Component):
    r"""A level with a random-walk slope.

    $$
    \mu_{t+1} = \mu_t + \delta_t \Delta_t + \eta_t, \qquad
    \delta_{t+1} = \delta_t + \zeta_t, \qquad
    \eta_t \sim \mathcal N(0, \sigma_\mu^2 \Delta_t), \quad
    \zeta_t \sim \mathcal N(0, \sigma_\delta^2 \Delta_t) .
    $$

    The default prior of $\sigma_\delta$ is HalfCauchy with scale $n^{-3/2}$, $n$ the span of
    the data in steps. Slope innovations bend the trend over $n$ steps by a standard
    deviation of $\sigma_\delta n^{3/2} / \sqrt 3$ (an integrated random walk), so the prior
    median says "about half a standard deviation of the series over the whole record",
    while the Cauchy tail lets the data ask for much more (`benchmarks/prior_sensitivity.py`
    compares it with a fixed-scale prior).

    Args:
        level_scale_prior: prior of $\sigma_\mu$; default HalfNormal(0.5).
        slope_scale_prior: prior of $\sigma_\delta$; default HalfCauchy($n^{-3/2}$).
        name: site prefix; default "trend".
    """

    kind = "trend"
    is_level = True
    has_slope = True
    state_size = property(lambda self: 2)

    def __init__(self, level_scale_prior=None, slope_scale_prior=None, name=None):
        super().__init__(name)
        self.level_scale_prior = _check_prior(
            _or_default(level_scale_prior, dist.HalfNormal(0.5)), "level_scale_prior"
        )
        self.slope_scale_prior = (
            None
            if slope_scale_prior is None
            else _check_prior(slope_scale_prior, "slope_scale_prior")
        )

    @property
    def units(self):
        return {"level_scale": UNIT_SCALE, "slope_scale": UNIT_SCALE}

    def sample(self, prefix, inputs):
        slope_prior = self.slope_scale_prior
        if slope_prior is None:
            slope_prior = dist.HalfCauchy(_span(inputs) ** -1.5)
        return {
            "level_scale": _site(prefix, "level_scale", self.level_scale_prior),
            "slope_scale": _site(prefix, "slope_scale", slope_prior),
        }

    def block(self, params, inputs):
        variances = jnp.stack([params["level_scale"] ** 2, params["slope_scale"] ** 2])
        steps = transition_steps(inputs)
        if steps is None:
            transition = np.array([[1.0, 1.0], [0.0, 1.0]])
            noise = jnp.diag(variances)
            loading = np.array([1.0, 0.0])
        else:
            T = inputs.num_timesteps
            transition = jnp.broadcast_to(jnp.eye(2), (T, 2, 2)).at[:, 0, 1].set(steps)
            noise = jnp.einsum("t,i,ij->tij", steps, variances, jnp.eye(2))
            loading = jnp.broadcast_to(jnp.array([1.0, 0.0]), (T, 2))
        return Block(
            transition,
            noise,
            loading,
            jnp.array([inputs.initial_level, 0.0]),
            jnp.diag(jnp.array([1.0, 0.1**2])),
        )


class SemiLocalLinearTrend(Component):
    r"""A level whose slope is AR(1) around a long-run slope $D$.

    $$
    \mu_{t+1} = \mu_t + \delta_t \Delta_t + \eta_t, \qquad
    \delta_{t+1} = D + \phi^{\Delta_t} (\delta_t - D) + \zeta_t,
    $$

    with $\zeta_t \sim \mathcal N(0, \sigma_\delta^2 (1 - \phi^{2\Delta_t}) / (1 - \phi^2))$
    (the exact discretisation of the slope's Ornstein–Uhlenbeck process). $D$ is a constant
    state with prior $\mathcal N(0, 0.1^2)$, so it is integrated out exactly.

    Args:
        level_scale_prior: prior of $\sigma_\mu$; default HalfNormal(0.5).
        slope_scale_prior: prior of $\sigma_\delta$; default HalfNormal(0.05).
        persistence_prior: prior of $\phi \in (0, 1)$; default Beta(8, 2).
        name: site prefix; default "semi_trend".
    """

    kind = "semi_trend"
    is_level = True
    has_slope = True
    state_size = property(lambda self: 3)

    def __init__(
        self, level_scale_prior=None, slope_scale_prior=None, persistence_prior=None, name=None
    ):
        super().__init__(name)
        self.level_scale_prior = _check_prior(
            _or_default(level_scale_prior, dist.HalfNormal(0.5)), "level_scale_prior"
        )
        self.slope_scale_prior = _check_prior(
            _or_default(slope_scale_prior, dist.HalfNormal(0.05)), "slope_scale_prior"
        )
        self.persistence_prior = _check_prior(
            _or_default(persistence_prior, dist.Beta(8.0, 2.0)), "persistence_prior"
        )

    @property
    def units(self):
        return {"level_scale": UNIT_SCALE, "slope_scale": UNIT_SCALE, "persistence": UNIT_NONE}

    def sample(self, prefix, inputs):
        return {
            "level_scale": _site(prefix, "level_scale", self.level_scale_prior),
            "slope_scale": _site(prefix, "slope_scale", self.slope_scale_prior),
            "persistence": _site(prefix, "persistence", self.persistence_prior),
        }

    def block(self, params, inputs):
        phi = params["persistence"]
        level_var = params["level_scale"] ** 2
        slope_var = params["slope_scale"] ** 2
        steps = transition_steps(inputs)
        dt = 1.0 if steps is None else steps
        decay = phi**dt
        slope_noise = slope_var * (1.0 - decay**2) / (1.0 - phi**2)

        def matrices(dt, decay, slope_noise):
            transition = jnp.array(
                [[1.0, dt, 0.0], [0.0, decay, 1.0 - decay], [0.0, 0.0, 1.0]], dtype=float
            )
            noise = jnp.diag(jnp.stack([level_var * dt, slope_noise, 0.0 * level_var]))
            return transition, noise

        if steps is None:
            transition, noise = matrices(1.0, decay, slope_noise)
            loading = jnp.array([1.0, 0.0, 0.0])
        else:
            transition, noise = jax.vmap(matrices)(dt, decay, slope_noise)
            loading = jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0]), (inputs.num_timesteps, 3))
        return Block(
            transition,
            noise,
            loading,
            jnp.array([inputs.initial_level, 0.0, 0.0]),
            jnp.diag(jnp.array([1.0, 0.1**2, 0.1**2])),
        )


class Seasonal(_OneScale):
    r"""Dummy-variable seasonality: the effects of a cycle of `period` seasons sum to about 0.

    $$
    s_{t+1} = -\sum_{j=1}^{p-1} s_{t+1-j} + \omega_t, \qquad \omega_t \sim \mathcal N(0,
    \sigma_s^2),
    $$

    with state $(s_t, \dots, s_{t-p+2})$. With `duration` $k > 1$ each season lasts $k$
    steps: the state moves on only at the last step of a season.

    Needs an evenly spaced index; on irregular data use `FourierSeasonal`.

    Args:
        period: number of seasons, at least 2.
        duration: steps per season, at least 1.
        scale_prior: prior of $\sigma_s$; default HalfNormal(0.1).
        name: site prefix; default "seasonal".
    """

    kind = "seasonal"
    state_size = property(lambda self: self.period - 1)

    def __init__(self, period: int, duration: int = 1, scale_prior=None, name=None):
        super().__init__(name)
        if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 2:
            raise ValueError(f"Seasonal period must be an integer >= 2, got {period!r}")
        if (
            isinstance(duration, bool)
            or not isinstance(duration, (int, np.integer))
            or duration < 1
        ):
            raise ValueError(f"Seasonal duration must be an integer >= 1, got {duration!r}")
        self.period = int(period)
        self.duration = int(duration)
        self.scale_prior = _check_prior(
            _or_default(scale_prior, dist.HalfNormal(0.1)), "scale_prior"
        )

    def needs_regular_grid(self):
        return True

    def block(self, params, inputs):
        d = self.period - 1
        advance = np.zeros((d, d))
        advance[0, :] = -1.0
        advance[1:, :-1] = np.eye(d - 1)
        noise = jnp.zeros((d, d)).at[0, 0].set(params["scale"] ** 2)
        loading = np.zeros(d)
        loading[0] = 1.0
        if self.duration == 1:
            return Block(advance, noise, loading, np.zeros(d), np.eye(d))
        T = inputs.num_timesteps
        moves = (np.arange(T) % self.duration) == self.duration - 1
        transition = np.where(moves[:, None, None], advance, np.eye(d))
        return Block(
            jnp.asarray(transition),
            noise * jnp.asarray(moves, float)[:, None, None],
            jnp.asarray(np.broadcast_to(loading, (T, d))),
            jnp.zeros(d),
            jnp.eye(d),
        )


class FourierSeasonal(_OneScale):
    r"""Trigonometric seasonality with a real-valued period.

    For each harmonic $j = 1..K$ a pair $(a_j, b_j)$ rotates by $\lambda_j \Delta_t$ with
    $\lambda_j = 2\pi j / p$ and takes a random-walk shock:

    $$
    \begin{pmatrix} a_j \\ b_j \end{pmatrix}_{t+1} = R(\lambda_j \Delta_t)
    \begin{pmatrix} a_j \\ b_j \end{pmatrix}_t + \omega_{j,t}, \qquad
    \omega_{j,t} \sim \mathcal N(0, \sigma_s^2 \Delta_t I_2), \qquad
    y_t \mathrel{+}= \sum_j a_{j,t} .
    $$

    With every harmonic of an even period ($K = p / 2$) on a regular grid, the last pair
    rotates by $\pi$ and its sine state never reaches $y$; it is held at zero (no shock,
    no initial variance), which leaves the likelihood as it is and gives the Riccati
    equation the stabilising solution the steady-state filter needs.

    Args:
        period: the period in steps (a float, e.g. 52.18 or 365.25), greater than 1.
        harmonics: number of harmonics K, from 1 to floor(period / 2).
        scale_prior: prior of $\sigma_s$; default HalfNormal(0.05).
        name: site prefix; default "fourier".
    """

    kind = "fourier"
    state_size = property(lambda self: 2 * self.harmonics)

    def __init__(self, period: float, harmonics: int = 2, scale_prior=None, name=None):
        super().__init__(name)
        if isinstance(period, bool) or not isinstance(period, (int, float, np.number)):
            raise ValueError(f"FourierSeasonal period must be a number, got {period!r}")
        if not period > 1:
            raise ValueError(f"FourierSeasonal period must be > 1 step, got {period!r}")
        max_harmonics = max(1, math.floor(period / 2))
        if (
            isinstance(harmonics, bool)
            or not isinstance(harmonics, (int, np.integer))
            or not 1 <= harmonics <= max_harmonics
        ):
            raise ValueError(
                f"FourierSeasonal harmonics must be an integer from 1 to {max_harmonics} "
                f"(period / 2) for period {period}, got {harmonics!r}"
            )
        self.period = float(period)
        self.harmonics = int(harmonics)
        self.scale_prior = _check_prior(
            _or_default(scale_prior, dist.HalfNormal(0.05)), "scale_prior"
        )

    def block(self, params, inputs):
        K = self.harmonics
        d = 2 * K
        frequencies = 2.0 * np.pi * np.arange(1, K + 1) / self.period
        variance = params["scale"] ** 2
        loading = np.zeros(d)
        loading[::2] = 1.0
        steps = transition_steps(inputs)

        def rotation(xp, dt):
            angle = xp.asarray(dt)[..., None] * frequencies
            c, s = xp.cos(angle), xp.sin(angle)
            out = xp.zeros((*np.shape(dt), d, d))
            for j in range(K):
                pair = xp.stack(
                    [xp.stack([c[..., j], s[..., j]], -1), xp.stack([-s[..., j], c[..., j]], -1)],
                    -2,
                )
                if xp is np:
                    out[..., 2 * j : 2 * j + 2, 2 * j : 2 * j + 2] = pair
                else:
                    out = out.at[..., 2 * j : 2 * j + 2, 2 * j : 2 * j + 2].set(pair)
            return out

        initial = np.eye(d)
        if steps is None:
            # numpy keeps the constant transition concrete, so the Kalman engine can use
            # its sparse products.
            transition = rotation(np, np.float64(1.0))
            noise = variance * jnp.eye(d)
            if 2 * K == self.period:
                # On a regular grid the Nyquist harmonic (period 2) rotates by pi, so its
                # sine state neither reaches y nor the cosine state. With noise and a
                # unit root its variance would grow without bound, the Riccati equation
                # would have no stabilising solution, and every evaluation would leave
                # the steady-state path. Held at zero (no noise, no initial variance, no
                # memory) it changes no likelihood and keeps that path.
                transition[-1, -1] = 0.0
                noise = noise.at[-1, -1].set(0.0)
                initial[-1, -1] = 0.0
            load = loading
        else:
            transition = rotation(jnp, steps)
            noise = variance * steps[:, None, None] * jnp.eye(d)
            load = np.broadcast_to(loading, (inputs.num_timesteps, d))
        return Block(transition, noise, load, np.zeros(d), initial)


def check_columns(columns, what: str) -> list[str]:
    """Covariate column names as a list: one name or several, non-empty and distinct.

    Raises:
        ValueError: naming `what` (the component) and the offending columns.
    """
    if isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise ValueError(f"{what} needs a non-empty list of column names, got {columns!r}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"{what} columns must be distinct, got {columns!r}")
    return columns


def horseshoe_variance(global_scale, local_scale, slab_variance):
    r"""The regularised horseshoe's variance $c^2 \tau^2\lambda^2 / (c^2 + \tau^2\lambda^2)$.

    Computed as $c^2 \,\mathrm{sigmoid}(\log(\tau^2\lambda^2 / c^2))$: the product
    $\tau^2\lambda^2$ over- or underflows float32 where the half-Cauchy tails reach
    ($|\log \tau\lambda| > 44$), and the plain ratio then became NaN or lost its gradient
    (NUTS drifted to a degenerate mode of the Nile's change points in float32).
    """
    log_ratio = 2.0 * (jnp.log(global_scale) + jnp.log(local_scale)) - jnp.log(slab_variance)
    return slab_variance * jax.nn.sigmoid(log_ratio)


class Regression(Component):
    r"""Static regression on covariates: $y_t \mathrel{+}= x_t^\top \beta$.

    The coefficients are parameters (not states). Default prior
    $\beta_k \sim \mathcal N(0, 1)$ on standardised covariates and target. With
    `sparse=True` they get a regularised horseshoe (Piironen & Vehtari, 2017):
    $\beta_k = \tau \tilde\lambda_k z_k$, $z_k \sim \mathcal N(0, 1)$,
    $\lambda_k \sim \mathcal C^+(0, 1)$, $\tau \sim \mathcal C^+(0, \tau_0)$,
    $\tilde\lambda_k^2 = c^2\lambda_k^2 / (c^2 + \tau^2\lambda_k^2)$, $c^2 \sim
    \text{Inv-Gamma}(2, 2)$, with $\tau_0 = 0.1$.

    Args:
        columns: covariate column names.
        sparse: use the regularised horseshoe.
        coefficient_prior: prior of each $\beta_k$ when not sparse; default Normal(0, 1).
        name: site prefix; default "regression".
    """

    kind = "regression"

    def __init__(self, columns, sparse: bool = False, coefficient_prior=None, name=None):
        super().__init__(name)
        self._columns = check_columns(columns, "Regression")
        self.sparse = bool(sparse)
        self.coefficient_prior = _check_prior(
            _or_default(coefficient_prior, dist.Normal(0.0, 1.0)), "coefficient_prior"
        )

    @property
    def columns(self):
        return list(self._columns)

    @property
    def units(self):
        return {"coefficients": UNIT_COEFFICIENT}

    def sample(self, prefix, inputs):
        k = len(self._columns)
        if not self.sparse:
            prior = self.coefficient_prior.expand([k]).to_event(1)
            return {"coefficients": _site(prefix, "coefficients", prior)}
        tau = _site(prefix, "global_shrinkage", dist.HalfCauchy(0.1))
        lam = _site(prefix, "local_shrinkage", dist.HalfCauchy(jnp.ones(k)).to_event(1))
        slab = _site(prefix, "slab_variance", dist.InverseGamma(2.0, 2.0))
        z = _site(prefix, "raw_coefficients", dist.Normal(jnp.zeros(k), 1.0).to_event(1))
        scale = jnp.sqrt(horseshoe_variance(tau, lam, slab))
        beta = numpyro.deterministic(f"{prefix}.coefficients", scale * z)
        return {"coefficients": beta}

    def design(self, inputs: ModelInputs) -> Float[Array, "T k"]:
        """The standardised covariate matrix."""
        return jnp.stack([jnp.asarray(inputs.covariates[c]) for c in self._columns], axis=-1)

    def block(self, params, inputs):
        return None

    def offset(self, params, inputs):
        return self.design(inputs) @ params["coefficients"]


class DynamicRegression(Component):
    r"""Regression with random-walk coefficients: $y_t \mathrel{+}= x_t^\top \beta_t$.

    $$
    \beta_{t+1} = \beta_t + \xi_t, \qquad \xi_{t} \sim \mathcal N(0, \mathrm{diag}(\sigma_k^2)
    \Delta_t), \qquad \beta_0 \sim \mathcal N(0, I).
    $$

    The coefficients are states, so the observation loading varies in time (the exact
    filter runs; no steady state).

    Args:
        columns: covariate column names.
        scale_prior: prior of each $\sigma_k$; default HalfNormal(0.05).
        name: site prefix; default "dynamic_regression".
    """

    kind = "dynamic_regression"
    state_size = property(lambda self: len(self.columns))

    def __init__(self, columns, scale_prior=None, name=None):
        super().__init__(name)
        self._columns = check_columns(columns, "DynamicRegression")
        self.scale_prior = _check_prior(
            _or_default(scale_prior, dist.HalfNormal(0.05)), "scale_prior"
        )

    @property
    def columns(self):
        return list(self._columns)

    @property
    def units(self):
        return {"scales": UNIT_COEFFICIENT}

    def sample(self, prefix, inputs):
        k = len(self._columns)
        return {"scales": _site(prefix, "scales", self.scale_prior.expand([k]).to_event(1))}

    def block(self, params, inputs):
        k = len(self._columns)
        T = inputs.num_timesteps
        X = jnp.stack([jnp.asarray(inputs.covariates[c]) for c in self._columns], axis=-1)
        steps = transition_steps(inputs)
        variances = params["scales"] ** 2
        if steps is None:
            noise = jnp.diag(variances)
        else:
            noise = steps[:, None, None] * jnp.diag(variances)
        return Block(np.eye(k), noise, X.reshape(T, k), np.zeros(k), np.eye(k))


def _pacf_to_ar(pacf: Float[Array, " p"]) -> Float[Array, " p"]:
    """Durbin–Levinson: partial autocorrelations in (-1, 1) to stationary AR coefficients."""
    phi = pacf[:1]
    for k in range(1, pacf.shape[0]):
        phi = jnp.concatenate([phi - pacf[k] * phi[::-1], pacf[k : k + 1]])
    return phi


def _stationary_cov(transition, noise):
    r"""Solve $P = A P A^\top + W$ by vectorisation (small orders only)."""
    p = transition.shape[0]
    lhs = jnp.eye(p * p) - jnp.kron(transition, transition)
    return jnp.linalg.solve(lhs, noise.reshape(-1)).reshape(p, p)


class Autoregressive(Component):
    r"""A zero-mean stationary AR(p) process added to the observation.

    $$
    a_{t+1} = \sum_{i=1}^{p} \phi_i a_{t+1-i} + \epsilon_t, \qquad
    \epsilon_t \sim \mathcal N(0, \sigma_a^2),
    $$

    stationary by construction: $\phi$ comes from partial autocorrelations
    $\kappa_i \in (-1, 1)$ (Durbin–Levinson), with prior $(\kappa_i + 1)/2 \sim
    \text{Beta}(2, 2)$. The initial state has the stationary covariance.

    On an irregular index only order 1 is available, as the Ornstein–Uhlenbeck process
    $a_{t+1} = \kappa^{\Delta_t} a_t + \epsilon_t$, $\epsilon_t \sim \mathcal N(0,
    \sigma_a^2 (1 - \kappa^{2\Delta_t}) / (1 - \kappa^2))$ (for $\kappa > 0$; the prior is
    then on (0, 1)).

    Args:
        order: p >= 1.
        scale_prior: prior of $\sigma_a$; default HalfNormal(0.5).
        name: site prefix; default "ar".
    """

    kind = "ar"
    state_size = property(lambda self: self.order)

    def __init__(self, order: int = 1, scale_prior=None, name=None):
        super().__init__(name)
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
            raise ValueError(f"Autoregressive order must be an integer >= 1, got {order!r}")
        self.order = int(order)
        self.scale_prior = _check_prior(
            _or_default(scale_prior, dist.HalfNormal(0.5)), "scale_prior"
        )

    @property
    def units(self):
        return {"scale": UNIT_SCALE, "coefficients": UNIT_NONE, "pacf_unit": UNIT_NONE}

    def sample(self, prefix, inputs):
        scale = _site(prefix, "scale", self.scale_prior)
        if inputs.regular:
            raw = _site(prefix, "pacf_unit", dist.Beta(2.0, 2.0).expand([self.order]).to_event(1))
            pacf = 2.0 * raw - 1.0
        else:
            if self.order != 1:
                raise ValueError(
                    f"Autoregressive(order={self.order}) needs an evenly spaced index; on "
                    "irregular data use order=1 (an Ornstein-Uhlenbeck process)"
                )
            pacf = _site(prefix, "pacf_unit", dist.Beta(2.0, 2.0).expand([1]).to_event(1))
        coefficients = numpyro.deterministic(f"{prefix}.coefficients", _pacf_to_ar(pacf))
        return {"scale": scale, "coefficients": coefficients}

    def block(self, params, inputs):
        p = self.order
        phi = params["coefficients"]
        variance = params["scale"] ** 2
        loading = jnp.zeros(p).at[0].set(1.0)
        steps = transition_steps(inputs)
        if steps is None:
            transition = jnp.zeros((p, p)).at[0, :].set(phi)
            if p > 1:
                transition = transition.at[1:, :-1].set(jnp.eye(p - 1))
            noise = jnp.zeros((p, p)).at[0, 0].set(variance)
            return Block(
                transition, noise, loading, jnp.zeros(p), _stationary_cov(transition, noise)
            )
        kappa = phi[0]
        decay = kappa**steps
        stationary_var = variance / (1.0 - kappa**2)
        T = inputs.num_timesteps
        return Block(
            decay[:, None, None],
            (stationary_var * (1.0 - decay**2))[:, None, None],
            jnp.broadcast_to(loading, (T, 1)),
            jnp.zeros(1),
            jnp.reshape(stationary_var, (1, 1)),
        )
