r"""`Model`: components composed into one NumPyro program over the Kalman likelihood.

The state is the concatenation of the components' states; the model's matrices are
block-diagonal in them, the observation loads on each component's states and adds any
component offsets (static regression), plus observation noise
$\varepsilon_t \sim \mathcal N(0, \sigma_\varepsilon^2)$ with site `observation.scale`.

With `observation="student_t"` the noise is Student-t, written as a scale mixture of normals
so that the model stays linear-Gaussian given the mixing weights and the Kalman likelihood
stays exact:

$$
\varepsilon_t \mid \lambda_t \sim \mathcal N(0, \sigma_\varepsilon^2 / \lambda_t), \qquad
\lambda_t \sim \text{Gamma}(\nu/2, \nu/2), \qquad \nu \sim \text{Gamma}(2, 0.1),
$$

which integrates to $\varepsilon_t \sim t_\nu(0, \sigma_\varepsilon)$. The sites are
`observation.df` ($\nu$, the Gamma(2, 0.1) prior of Juárez & Steel, 2010) and
`observation.weights` ($\lambda_t$, one per step); an outlier gets a small weight, so it
barely moves the states.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bsts.components import UNIT_NONE, UNIT_SCALE, Block, Component, ModelInputs
from bsts.data import SeriesData
from bsts.distribution import StateSpaceDistribution
from bsts.kalman import StateSpace

__all__ = [
    "OBSERVATIONS",
    "OBSERVATION_DF",
    "OBSERVATION_SCALE",
    "OBSERVATION_WEIGHTS",
    "Model",
    "StateLayout",
]

OBSERVATION_SCALE = "observation.scale"
OBSERVATION_DF = "observation.df"
OBSERVATION_WEIGHTS = "observation.weights"
OBSERVATIONS = ("gaussian", "student_t")


@dataclass(frozen=True)
class StateLayout:
    """Where each component's states sit in the model's state vector."""

    slices: dict[str, slice]
    state_dim: int


class Model:
    r"""A structural time-series model: a sum of components plus observation noise.

    Build it with `+` (`LocalLinearTrend() + Seasonal(12)`) or from a list. Components of
    the same kind get distinct names (`seasonal`, `seasonal_2`); NumPyro sites are named
    `"{component}.{parameter}"`. A `Model` is itself a NumPyro model:
    `model(inputs, y=None)`, with `inputs` from `model.inputs(series)`.

    Args:
        components: the components, at least one.
        observation_scale_prior: prior of $\sigma_\varepsilon$ in standardised units;
            default HalfNormal(1).
        observation: "gaussian" (default) or "student_t" (robust to outliers; see the
            module docstring).
    """

    def __init__(self, components, observation_scale_prior=None, observation: str = "gaussian"):
        components = list(components)
        if not components:
            raise ValueError("a Model needs at least one component")
        for component in components:
            if not isinstance(component, Component):
                raise ValueError(
                    f"Model components must be bsts components, got {type(component).__name__}"
                )
        self.components = components
        prior = dist.HalfNormal(1.0) if observation_scale_prior is None else observation_scale_prior
        if not isinstance(prior, dist.Distribution):
            raise ValueError("observation_scale_prior must be a numpyro Distribution")
        self.observation_scale_prior = prior
        if observation not in OBSERVATIONS:
            raise ValueError(
                f"unknown observation model {observation!r}; choose one of "
                f"{', '.join(OBSERVATIONS)}"
            )
        self.observation = observation
        self.names = _unique_names(components)
        if not any(self._has_states(c) for c in components):
            raise ValueError(
                "a Model needs at least one component with states (a level, trend, "
                "seasonal, dynamic regression or autoregressive part)"
            )
        self.modulated_levels = _modulated_levels(self.names, components)

    @staticmethod
    def _has_states(component: Component) -> bool:
        return component.state_size > 0

    def __add__(self, other) -> Model:
        if isinstance(other, Model):
            extra = other.components
        elif isinstance(other, Component):
            extra = [other]
        else:
            return NotImplemented
        return Model(self.components + extra, self.observation_scale_prior, self.observation)

    def __radd__(self, other):
        if isinstance(other, Component):
            return Model([other]) + self
        return NotImplemented

    def __iter__(self):
        return iter(zip(self.names, self.components, strict=True))

    def __repr__(self) -> str:
        parts = " + ".join(f"{name}={type(c).__name__}" for name, c in self)
        return f"Model({parts})"

    @property
    def covariate_columns(self) -> list[str]:
        """Every covariate column the components read, in order, without repeats."""
        seen = []
        for component in self.components:
            seen += [c for c in component.columns if c not in seen]
        return seen

    def units(self) -> dict[str, str]:
        """Unit of every parameter site, keyed by site name."""
        out = {OBSERVATION_SCALE: UNIT_SCALE}
        if self.observation == "student_t":
            out[OBSERVATION_DF] = UNIT_NONE
            out[OBSERVATION_WEIGHTS] = UNIT_NONE
        for name, component in self:
            for parameter, unit in component.units.items():
                out[f"{name}.{parameter}"] = unit
        return out

    def inputs(self, series: SeriesData, covariates: dict | None = None) -> ModelInputs:
        """The arrays the components need, from a prepared series.

        Raises:
            ValueError: a component needs an evenly spaced index and the series is irregular.
        """
        if not series.regular:
            for name, component in self:
                if component.needs_regular_grid():
                    raise ValueError(
                        f"component {name!r} ({type(component).__name__}) needs an evenly "
                        "spaced time index, but this series is irregular; use "
                        "FourierSeasonal(period, harmonics) for seasonality on irregular data"
                    )
        observed = series.y[~np.isnan(series.y)]
        return ModelInputs(
            dt=series.dt,
            regular=series.regular,
            covariates=dict(series.covariates if covariates is None else covariates),
            initial_level=float(observed[0]),
            num_timesteps=series.num_timesteps,
        )

    def sample_parameters(self, inputs: ModelInputs) -> dict:
        """Draw every component's parameters (inside a NumPyro trace)."""
        params = {name: component.sample(name, inputs) for name, component in self}
        params[OBSERVATION_SCALE] = numpyro.sample(OBSERVATION_SCALE, self.observation_scale_prior)
        if self.observation == "student_t":
            df = numpyro.sample(OBSERVATION_DF, dist.Gamma(2.0, 0.1))
            params[OBSERVATION_DF] = df
            params[OBSERVATION_WEIGHTS] = numpyro.sample(
                OBSERVATION_WEIGHTS,
                dist.Gamma(df / 2.0, df / 2.0).expand([inputs.num_timesteps]).to_event(1),
            )
        return params

    def layout(self, inputs: ModelInputs) -> StateLayout:
        """Where each component's states sit, for a given input (dimensions only)."""
        slices, start = {}, 0
        for name, component in self:
            size = component.state_size
            slices[name] = slice(start, start + size)
            start += size
        return StateLayout(slices, start)

    def network_param_sites(self) -> list[str]:
        """The `numpyro.param` sites of point-estimated networks (learned by SVI)."""
        return [
            component.param_site(name)
            for name, component in self
            if getattr(component, "point_estimated", False)
        ]

    def penalty_sites(self) -> list[str]:
        """The weight-prior `numpyro.factor` sites of point-estimated networks."""
        return [
            component.penalty_site(name)
            for name, component in self
            if getattr(component, "point_estimated", False)
        ]

    def attach_networks(self, params: dict, network_params: dict) -> dict:
        """Nested parameters with every network put back (outside a NumPyro trace).

        Args:
            params: `{component: {parameter: value}}` from posterior draws.
            network_params: learned point-estimated weights, keyed by param site.
        """
        out = dict(params)
        for name, component in self:
            if hasattr(component, "attach_network"):
                out[name] = component.attach_network(name, params[name], network_params)
        return out

    def state_space(self, params: dict, inputs: ModelInputs) -> StateSpace:
        """The model's state-space form for given parameters (standardised units)."""
        blocks, offset = {}, jnp.zeros(inputs.num_timesteps)
        for name, component in self:
            block = component.block(params[name], inputs)
            if block is not None:
                blocks[name] = block
            extra = component.offset(params[name], inputs)
            if extra is not None:
                offset = offset + extra
        # Covariate-driven dynamics (LSTMTransition) rescale their level's innovations.
        for name, level in self.modulated_levels.items():
            component = self.components[self.names.index(name)]
            blocks[level] = component.modulate(params[name], inputs, blocks[level])
        variance = params[OBSERVATION_SCALE] ** 2
        if self.observation == "student_t":
            variance = variance / _weights(params[OBSERVATION_WEIGHTS], inputs.num_timesteps)
        return _assemble(list(blocks.values()), offset, variance, inputs.num_timesteps)

    def __call__(self, inputs: ModelInputs, y=None):
        """The NumPyro program: parameters, then the series given them."""
        params = self.sample_parameters(inputs)
        ssm = self.state_space(params, inputs)
        return numpyro.sample("y", StateSpaceDistribution(ssm, inputs.num_timesteps), obs=y)


def _weights(weights, T: int):
    """The mixing weights over T steps; steps past the fitted ones (a forecast) get 1.

    A forecast's own noise is drawn by `bsts.forecast`, so the weight used there only sets
    the (unused) observation variance of the future steps.
    """
    weights = jnp.asarray(weights)
    fitted = weights.shape[-1]
    if fitted >= T:
        return weights[..., :T]
    return jnp.concatenate([weights, jnp.ones((*weights.shape[:-1], T - fitted))], axis=-1)


def _unique_names(components) -> list[str]:
    names, counts = [], {}
    explicit = [c.name for c in components if c.name is not None]
    if len(set(explicit)) != len(explicit):
        raise ValueError(f"component names must be distinct, got {explicit}")
    for component in components:
        base = component.name or component.kind
        counts[base] = counts.get(base, 0) + 1
        name = base if counts[base] == 1 else f"{base}_{counts[base]}"
        while name in explicit and component.name is None:
            counts[base] += 1
            name = f"{base}_{counts[base]}"
        names.append(name)
    return names


def _modulated_levels(names: list[str], components: list[Component]) -> dict[str, str]:
    """For each component that drives a level (LSTMTransition), the level's name."""
    from bsts.components import LocalLevel, LocalLinearTrend, SemiLocalLinearTrend

    kinds = (LocalLevel, LocalLinearTrend, SemiLocalLinearTrend)
    levels = [n for n, c in zip(names, components, strict=True) if isinstance(c, kinds)]
    out = {}
    for name, component in zip(names, components, strict=True):
        if not hasattr(component, "modulate"):
            continue
        wanted = getattr(component, "level", None)
        if not levels:
            raise ValueError(
                f"{name!r} ({type(component).__name__}) drives a level, but the model has "
                "none: add a LocalLevel, LocalLinearTrend or SemiLocalLinearTrend"
            )
        if wanted is not None and wanted not in levels:
            raise ValueError(
                f"{name!r} drives level {wanted!r}, which is not a level component of this "
                f"model; its levels are {levels}"
            )
        target = levels[0] if wanted is None else wanted
        if target in out.values():
            raise ValueError(f"level {target!r} is driven by two components; keep one")
        out[name] = target
    return out


def _stack(parts, T: int, time_varying: bool, axes: int):
    """Block-diagonal (axes=2) or concatenated (axes=1) assembly, constant or over time."""
    concrete = all(isinstance(p, np.ndarray) for p in parts)
    xp = np if concrete and not time_varying else jnp
    if time_varying:
        parts = [jnp.broadcast_to(p, (T, *p.shape[-axes:])) for p in parts]
    if axes == 1:
        return xp.concatenate(parts, axis=-1)
    sizes = [p.shape[-1] for p in parts]
    total = sum(sizes)
    lead = (T,) if time_varying else ()
    out = xp.zeros((*lead, total, total))
    start = 0
    for part, size in zip(parts, sizes, strict=True):
        if xp is np:
            out[..., start : start + size, start : start + size] = part
        else:
            out = out.at[..., start : start + size, start : start + size].set(part)
        start += size
    return out


def _assemble(blocks: list[Block], offset, observation_var, T: int) -> StateSpace:
    def varies(name, axes):
        return any(np.ndim(getattr(b, name)) > axes for b in blocks)

    def stack(name, axes):
        return _stack([getattr(b, name) for b in blocks], T, varies(name, axes), axes)

    return StateSpace(
        stack("transition", 2),
        stack("noise_cov", 2),
        stack("loading", 1),
        offset,
        observation_var,
        jnp.concatenate([jnp.asarray(b.initial_mean, float) for b in blocks]),
        _stack(
            [
                np.asarray(b.initial_cov)
                if isinstance(b.initial_cov, np.ndarray)
                else b.initial_cov
                for b in blocks
            ],
            T,
            False,
            2,
        ),
    )
