r"""The linear-Gaussian state-space model and its shape checks.

The model, for steps $t = 0, \dots, T-1$:

$$
x_0 \sim \mathcal N(m_0, P_0), \qquad
x_{t+1} = F_t x_t + \eta_t,\ \eta_t \sim \mathcal N(0, Q_t), \qquad
y_t = H_t x_t + d_t + \varepsilon_t,\ \varepsilon_t \sim \mathcal N(0, r_t).
$$

Every field that can vary in time may instead be given without its leading time axis, which
declares it constant. The filters use that declaration: a model whose $F, Q, H, r$ are all
constant can use the steady-state fast path (see `bsts.kalman.steady`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["StateSpace", "check_observations", "split_time_varying"]


class _FieldSpec(NamedTuple):
    name: str
    state_axes: int  # trailing axes of length d
    time_varying_allowed: bool


_FIELDS = (
    _FieldSpec("transition_matrix", 2, True),
    _FieldSpec("transition_cov", 2, True),
    _FieldSpec("observation_matrix", 1, True),
    _FieldSpec("observation_offset", 0, True),
    _FieldSpec("observation_var", 0, True),
    _FieldSpec("initial_mean", 1, False),
    _FieldSpec("initial_cov", 2, False),
)


def _shape_text(spec: _FieldSpec, time_varying: bool) -> str:
    dims = (["T"] if time_varying else []) + ["d"] * spec.state_axes
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


@jax.tree_util.register_pytree_node_class
class StateSpace:
    """A linear-Gaussian state-space model with univariate observations.

    Args:
        transition_matrix: $F$, shape `(T, d, d)`, or `(d, d)` when constant.
            `transition_matrix[t]` maps the state at step t to step t+1, so the last entry
            of a time-varying $F$ is never used.
        transition_cov: $Q$, shape `(T, d, d)` or `(d, d)`; may be singular.
        observation_matrix: $H$, shape `(T, d)` or `(d,)`.
        observation_offset: $d$, shape `(T,)` or `()`.
        observation_var: $r$, shape `(T,)` or `()`; must be positive where y is observed.
        initial_mean: $m_0$, the prior mean of the state at the first observation, `(d,)`.
        initial_cov: $P_0$, its covariance, `(d, d)`.

    Raises:
        ValueError: a field has the wrong number of axes, a state axis that disagrees with
            `initial_mean`, or a time axis that disagrees with another field's.
    """

    __slots__ = tuple(spec.name for spec in _FIELDS)

    transition_matrix: Float[Array, "*T d d"]
    transition_cov: Float[Array, "*T d d"]
    observation_matrix: Float[Array, "*T d"]
    observation_offset: Float[Array, "*T"]
    observation_var: Float[Array, "*T"]
    initial_mean: Float[Array, " d"]
    initial_cov: Float[Array, "d d"]

    def __init__(
        self,
        transition_matrix,
        transition_cov,
        observation_matrix,
        observation_offset,
        observation_var,
        initial_mean,
        initial_cov,
    ):
        values = dict(
            transition_matrix=transition_matrix,
            transition_cov=transition_cov,
            observation_matrix=observation_matrix,
            observation_offset=observation_offset,
            observation_var=observation_var,
            initial_mean=initial_mean,
            initial_cov=initial_cov,
        )
        arrays = {name: _as_float_array(name, value) for name, value in values.items()}
        _validate(arrays)
        for name, value in arrays.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("StateSpace is immutable; build a new one with `replace`.")

    # -- pytree protocol: unflattening skips validation, since JAX transformations pass
    # placeholder leaves (tracers, batched values) that need not carry the user's shapes.
    def tree_flatten(self):
        """Leaves in field order; no auxiliary data."""
        return tuple(getattr(self, spec.name) for spec in _FIELDS), None

    @classmethod
    def tree_unflatten(cls, aux_data, leaves):
        """Rebuild without validation (leaves may be tracers or batched values)."""
        obj = object.__new__(cls)
        for spec, leaf in zip(_FIELDS, leaves, strict=True):
            object.__setattr__(obj, spec.name, leaf)
        return obj

    def replace(self, **changes) -> StateSpace:
        """Return a copy with some fields replaced (validated again)."""
        values = {spec.name: getattr(self, spec.name) for spec in _FIELDS}
        values.update(changes)
        return StateSpace(**values)

    @property
    def state_dim(self) -> int:
        """The state dimension d."""
        return self.initial_mean.shape[-1]

    @property
    def num_timesteps(self) -> int | None:
        """T when any field varies in time, else None (the model fits any length)."""
        for spec in _FIELDS:
            if spec.time_varying_allowed and _is_time_varying(spec, getattr(self, spec.name)):
                return getattr(self, spec.name).shape[0]
        return None

    @property
    def has_constant_dynamics(self) -> bool:
        """Whether F, Q, H and r are all declared constant (the steady-state condition)."""
        return not any(
            _is_time_varying(spec, getattr(self, spec.name))
            for spec in _FIELDS
            if spec.name != "observation_offset" and spec.time_varying_allowed
        )

    @property
    def dtype(self):
        """The floating dtype the filters compute in (the widest of the fields)."""
        return jnp.result_type(*(getattr(self, spec.name) for spec in _FIELDS))

    def __repr__(self) -> str:
        shapes = ", ".join(f"{spec.name}={getattr(self, spec.name).shape}" for spec in _FIELDS)
        return f"StateSpace({shapes})"


def _is_time_varying(spec: _FieldSpec, value) -> bool:
    return value.ndim == spec.state_axes + 1


def _as_float_array(name: str, value):
    if isinstance(value, jax.core.Tracer):
        return value if jnp.issubdtype(value.dtype, jnp.floating) else value.astype(float)
    try:
        array = jnp.asarray(value)
    except TypeError as err:
        raise ValueError(
            f"StateSpace field `{name}` must be a numeric array, got {type(value)}"
        ) from err
    if not (jnp.issubdtype(array.dtype, jnp.floating) or jnp.issubdtype(array.dtype, jnp.integer)):
        raise ValueError(f"StateSpace field `{name}` must be numeric, got dtype {array.dtype}")
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(jnp.result_type(float))
    return array


def _validate(arrays: dict) -> None:
    mean = arrays["initial_mean"]
    if mean.ndim != 1:
        raise ValueError(f"StateSpace field `initial_mean` must have shape (d,), got {mean.shape}")
    d = mean.shape[0]
    if d < 1:
        raise ValueError("StateSpace field `initial_mean` must have at least one state (d >= 1)")
    num_timesteps: tuple[str, int] | None = None
    for spec in _FIELDS:
        value = arrays[spec.name]
        forms = (True, False) if spec.time_varying_allowed else (False,)
        if value.ndim not in [spec.state_axes + tv for tv in forms]:
            shapes = " or ".join(_shape_text(spec, tv) for tv in forms)
            raise ValueError(
                f"StateSpace field `{spec.name}` must have shape {shapes} with d={d}, "
                f"got {value.shape}"
            )
        trailing = value.shape[value.ndim - spec.state_axes :]
        if trailing != (d,) * spec.state_axes:
            raise ValueError(
                f"StateSpace field `{spec.name}` must end in {(d,) * spec.state_axes} "
                f"(d={d} from initial_mean), got shape {value.shape}"
            )
        if spec.time_varying_allowed and _is_time_varying(spec, value):
            length = value.shape[0]
            if num_timesteps is None:
                num_timesteps = (spec.name, length)
            elif length != num_timesteps[1]:
                raise ValueError(
                    f"StateSpace field `{spec.name}` has {length} time steps but "
                    f"`{num_timesteps[0]}` has {num_timesteps[1]}: time-varying fields must "
                    "share the leading axis T"
                )
            if length < 1:
                raise ValueError(f"StateSpace field `{spec.name}` has an empty time axis")


def check_observations(ssm: StateSpace, y) -> Float[Array, " T"]:
    """Check that `y` is a 1-D float series that matches the model's time axis.

    Args:
        ssm: the model.
        y: observations, NaN where missing.

    Returns:
        `y` as a JAX array in the model's float dtype.

    Raises:
        ValueError: `y` is not 1-D, is empty, or its length disagrees with the model's T.
    """
    y = jnp.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"observations y must be 1-D with shape (T,), got shape {y.shape}")
    if y.shape[0] < 1:
        raise ValueError("observations y are empty: need at least one time step")
    expected = ssm.num_timesteps
    if expected is not None and y.shape[0] != expected:
        raise ValueError(
            f"observations y have {y.shape[0]} time steps but the StateSpace has T={expected}"
        )
    if not jnp.issubdtype(y.dtype, jnp.floating):
        return y.astype(ssm.dtype)
    return y.astype(jnp.result_type(ssm.dtype, y.dtype))


def split_time_varying(ssm: StateSpace) -> tuple[dict, dict]:
    """Split the per-step fields into those scanned over time and those held constant.

    Scanning only the time-varying fields avoids materialising `(T, d, d)` copies of constant
    matrices.

    Returns:
        `(varying, constant)`: two dicts keyed by field name, together holding F, Q, H, d, r.
    """
    varying, constant = {}, {}
    for spec in _FIELDS:
        if not spec.time_varying_allowed:
            continue
        value = getattr(ssm, spec.name)
        (varying if _is_time_varying(spec, value) else constant)[spec.name] = value
    return varying, constant
