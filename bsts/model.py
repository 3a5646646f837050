r"""`Model`: components composed into one NumPyro program over the Kalman likelihood.

The state is the concatenation of the components' states; the model's matrices are
block-diagonal in them, the observation loads on each component's states and adds any
component offsets (static regression), plus observation noise from the model's
observation model (`bsts.observation`: Gaussian by default, or Student-t), whose
parameters live under the key `observation` (sites `observation.scale`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

import bsts.counts  # noqa: F401  (registers the count families by name)
from bsts.components import Block, Component, ModelInputs, check_component_name
from bsts.data import SeriesData
from bsts.kalman import StateSpace
from bsts.observation import (
    OBSERVATION,
    Gaussian,
    Observation,
    observation_model,
    observation_models,
    observation_params,
)

__all__ = [
    "OBSERVATIONS",
    "OBSERVATION_DF",
    "OBSERVATION_SCALE",
    "OBSERVATION_WEIGHTS",
    "Model",
    "StateLayout",
    "assemble",
]

OBSERVATION_SCALE = f"{OBSERVATION}.scale"
OBSERVATION_DF = f"{OBSERVATION}.df"
OBSERVATION_WEIGHTS = f"{OBSERVATION}.weights"
OBSERVATIONS = observation_models()


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
        observation: an observation model (`bsts.observation`, `bsts.counts`) or its
            name: "gaussian" (default), "student_t" (robust to outliers), or for counts
            and binary data "poisson", "negative_binomial" or "bernoulli" (the
            components then describe the log rate or the log odds), or
            `bsts.Binomial(trials="column")` for successes out of a number of trials.
    """

    def __init__(
        self,
        components,
        observation_scale_prior: dist.Distribution | None = None,
        observation: str | Observation = "gaussian",
    ):
        components = list(components)
        if not components:
            raise ValueError("a Model needs at least one component")
        for component in components:
            if not isinstance(component, Component):
                raise ValueError(
                    f"Model components must be bsts components, got {type(component).__name__}"
                )
        self.components = components
        if observation_scale_prior is not None and not isinstance(
            observation_scale_prior, dist.Distribution
        ):
            raise ValueError("observation_scale_prior must be a numpyro Distribution")
        self.observation = observation_model(observation, observation_scale_prior)
        self.names = _unique_names(components)
        if not any(self._has_states(c) for c in components):
            raise ValueError(
                "a Model needs at least one component with states (a level, trend, "
                "seasonal, dynamic regression or autoregressive part)"
            )
        self.modulated_levels = _modulated_levels(self.names, components)

    @property
    def observation_scale_prior(self) -> dist.Distribution:
        """The prior of the observation noise scale (the observation model's)."""
        return self.observation.scale_prior

    @staticmethod
    def _has_states(component: Component) -> bool:
        return component.state_size > 0

    def __add__(self, other) -> Model:
        if isinstance(other, Model):
            extra, observation = other.components, _combined(self.observation, other.observation)
        elif isinstance(other, Component):
            extra, observation = [other], self.observation
        else:
            return NotImplemented
        return Model(self.components + extra, observation=observation)

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
        """Every data column the model reads besides the target, in order, without repeats.

        The components' covariates, then the observation model's own columns (a
        binomial's trials).
        """
        seen = []
        for component in self.components:
            seen += [c for c in component.columns if c not in seen]
        return seen + [c for c in self.observation.columns if c not in seen]

    def units(self) -> dict[str, str]:
        """Unit of every parameter site, keyed by site name."""
        out = {f"{OBSERVATION}.{p}": unit for p, unit in self.observation.units.items()}
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
        observed = ~np.isnan(series.y)
        covariates = dict(series.covariates if covariates is None else covariates)
        own = {name: np.asarray(covariates[name])[observed] for name in self.observation.columns}
        return ModelInputs(
            dt=series.dt,
            regular=series.regular,
            covariates=covariates,
            initial_level=self.observation.initial_level(series.y[observed], own),
            num_timesteps=series.num_timesteps,
            gaps=series.gap_capacity,
        )

    def sample_parameters(self, inputs: ModelInputs) -> dict:
        """Draw every component's parameters (inside a NumPyro trace)."""
        params = {name: component.sample(name, inputs) for name, component in self}
        params[OBSERVATION] = self.observation.sample(inputs)
        return params

    def layout(self, inputs: ModelInputs) -> StateLayout:
        """Where each component's states sit, for a given input (dimensions only)."""
        slices, start = {}, 0
        for name, component in self:
            size = component.state_size
            slices[name] = slice(start, start + size)
            start += size
        return StateLayout(slices, start)

    @property
    def paddable(self) -> bool:
        """Whether a series padded with trailing missing steps keeps its posterior."""
        return all(component.paddable for component in self.components)

    def network_param_sites(self) -> list[str]:
        """The `numpyro.param` sites of point-estimated networks (learned by SVI)."""
        return [site for name, component in self for site in component.param_sites(name)]

    def penalty_sites(self) -> list[str]:
        """The weight-prior `numpyro.factor` sites of point-estimated networks."""
        return [site for name, component in self for site in component.penalty_sites(name)]

    def attach_networks(self, params: dict, network_params: dict) -> dict:
        """Nested parameters with every network put back (outside a NumPyro trace).

        Args:
            params: `{component: {parameter: value}}` from posterior draws.
            network_params: learned point-estimated weights, keyed by param site.
        """
        out = dict(params)
        for name, component in self:
            out[name] = component.attach_network(name, params[name], network_params)
        return out

    def state_space(self, params: dict, inputs: ModelInputs) -> StateSpace:
        """The model's state-space form for given parameters (standardised units).

        The observation parameters may be nested under `observation` (as
        `sample_parameters` returns them) or keyed by site (`observation.scale`).
        """
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
        variance = self.observation.variance(observation_params(params), inputs)
        return assemble(list(blocks.values()), offset, variance, inputs.num_timesteps)

    def __call__(self, inputs: ModelInputs, y=None):
        """The NumPyro program: parameters, then the series given them."""
        params = self.sample_parameters(inputs)
        ssm = self.state_space(params, inputs)
        likelihood = self.observation.likelihood(ssm, inputs, params[OBSERVATION])
        return numpyro.sample("y", likelihood, obs=y)


def _combined(left: Observation, right: Observation) -> Observation:
    """The observation model of a sum of two models: the one that is not the default.

    Raises:
        ValueError: both sides chose different, non-default observation models.
    """
    if left == right or right == Gaussian():
        return left
    if left == Gaussian():
        return right
    raise ValueError(
        f"cannot add models with different observation models, {left!r} and {right!r}; "
        "build one Model(components, observation=...) with the one you want"
    )


def _unique_names(components) -> list[str]:
    names, counts = [], {}
    explicit = [c.name for c in components if c.name is not None]
    for name in explicit:
        check_component_name(name)
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
    levels = [n for n, c in zip(names, components, strict=True) if c.is_level]
    out = {}
    for name, component in zip(names, components, strict=True):
        if not component.drives_level:
            continue
        wanted = component.level
        if not levels:
            raise ValueError(
                f"{name!r} ({type(component).__name__}) drives a level, but the model has "
                "none: add a LocalLevel, LocalLinearTrend or SemiLocalLinearTrend (or "
                "another component with is_level)"
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


def assemble(blocks: list[Block], offset, observation_var, T: int) -> StateSpace:
    """One state-space model from component blocks, block-diagonal in their states.

    Args:
        blocks: the components' blocks, in state order.
        offset: the observation offset, `(T,)`.
        observation_var: the observation noise variance, scalar or `(T,)`.
        T: the number of time steps.

    Returns:
        The `StateSpace`; constant parts stay constant (numpy) so that the likelihood can
        take its steady-state fast path.
    """

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
