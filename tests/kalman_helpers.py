"""Shared builders for the Kalman-filter tests: random systems, a dense oracle, LLT+seasonal.

Everything here is plain numpy (float64) except the small jitted wrappers at the bottom,
which build a `bsts.kalman.StateSpace` from a `System` inside `jax.jit` so that compiled
code is reused across tests with the same shapes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.stats

FIELD_NAMES = (
    "transition_matrix",
    "transition_cov",
    "observation_matrix",
    "observation_offset",
    "observation_var",
    "initial_mean",
    "initial_cov",
)

MISSING_PATTERNS = ("none", "some", "first", "all_but_one")


@dataclass(frozen=True)
class System:
    """Plain numpy description of a state-space model (same fields as `StateSpace`)."""

    transition_matrix: np.ndarray
    transition_cov: np.ndarray
    observation_matrix: np.ndarray
    observation_offset: np.ndarray
    observation_var: np.ndarray
    initial_mean: np.ndarray
    initial_cov: np.ndarray

    @property
    def state_dim(self) -> int:
        """The state size d."""
        return self.initial_mean.shape[0]

    def arrays(self, dtype=np.float64) -> tuple[np.ndarray, ...]:
        """The seven fields in constructor order, cast to `dtype`."""
        return tuple(np.asarray(getattr(self, f.name), dtype=dtype) for f in fields(self))

    def expanded(self, num_steps: int) -> System:
        """The same model with every field given its leading time axis of length num_steps."""
        d = self.state_dim

        def tile(a: np.ndarray, tail: tuple[int, ...]) -> np.ndarray:
            a = np.asarray(a, dtype=np.float64)
            if a.shape == tail:
                return np.broadcast_to(a, (num_steps, *tail)).copy()
            assert a.shape == (num_steps, *tail), a.shape
            return a

        return replace(
            self,
            transition_matrix=tile(self.transition_matrix, (d, d)),
            transition_cov=tile(self.transition_cov, (d, d)),
            observation_matrix=tile(self.observation_matrix, (d,)),
            observation_offset=tile(self.observation_offset, ()),
            observation_var=tile(self.observation_var, ()),
        )


def make_state_space(system: System, dtype=None):
    """A `bsts.kalman.StateSpace` with the fields of `system` (as jnp arrays of `dtype`)."""
    from bsts.kalman import StateSpace

    dtype = np.float64 if dtype is None else dtype
    return StateSpace(**{name: jnp.asarray(a) for name, a in _named(system.arrays(dtype))})


def _named(arrays) -> zip:
    return zip(FIELD_NAMES, arrays, strict=True)


# --------------------------------------------------------------------------------------
# Random systems and data
# --------------------------------------------------------------------------------------


def random_system(
    rng: np.random.Generator,
    state_dim: int,
    num_steps: int,
    *,
    time_invariant: bool = False,
    singular: bool = False,
    mean_scale: float = 1e3,
) -> System:
    """A random, stable-ish system; `singular` makes Q rank one (and P0 rank one for d > 2)."""
    d = state_dim
    lead = () if time_invariant else (num_steps,)

    a = rng.normal(size=(*lead, d, d))
    norms = np.linalg.norm(a.reshape(-1, d, d), ord=2, axis=(-2, -1)).reshape(*lead, 1, 1)
    transition = a / norms * rng.uniform(0.5, 1.0, size=(*lead, 1, 1))

    rank = 1 if singular else d
    b = 0.7 * rng.normal(size=(*lead, d, rank))
    transition_cov = b @ np.swapaxes(b, -1, -2)

    observation_matrix = rng.normal(size=(*lead, d))
    observation_offset = 5.0 * rng.normal(size=lead)
    observation_var = rng.uniform(0.2, 2.0, size=lead)

    signs = rng.choice([-1.0, 1.0], size=d)
    initial_mean = signs * mean_scale * rng.uniform(1.0, 2.0, size=d)
    p0_rank = 1 if (singular and d > 2) else d
    c = rng.normal(size=(d, p0_rank))
    initial_cov = c @ c.T + (0.0 if p0_rank < d else 0.1) * np.eye(d)
    return System(
        transition,
        transition_cov,
        observation_matrix,
        observation_offset,
        observation_var,
        initial_mean,
        initial_cov,
    )


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A matrix square root L with L L^T = cov for a PSD (possibly singular) cov."""
    w, v = np.linalg.eigh(0.5 * (cov + cov.T))
    return v * np.sqrt(np.clip(w, 0.0, None))


def simulate(rng: np.random.Generator, system: System, num_steps: int) -> np.ndarray:
    """One draw of y (num_steps,) from the model, by the forward recursion."""
    s = system.expanded(num_steps)
    d = s.state_dim
    x = s.initial_mean + _psd_sqrt(s.initial_cov) @ rng.normal(size=d)
    y = np.empty(num_steps)
    for t in range(num_steps):
        noise = np.sqrt(s.observation_var[t]) * rng.normal()
        y[t] = s.observation_matrix[t] @ x + s.observation_offset[t] + noise
        x = s.transition_matrix[t] @ x + _psd_sqrt(s.transition_cov[t]) @ rng.normal(size=d)
    return y


def apply_missing(rng: np.random.Generator, y: np.ndarray, pattern: str) -> np.ndarray:
    """A copy of y with NaNs placed according to `pattern` (see MISSING_PATTERNS, or "all")."""
    y = np.array(y, dtype=np.float64)
    n = y.shape[0]
    if pattern == "none":
        pass
    elif pattern == "some":
        mask = rng.uniform(size=n) < 0.3
        if n > 2:  # make sure there is at least one gap and one observation
            mask[n // 2] = True
            mask[0] = False
        y[mask] = np.nan
    elif pattern == "first":
        y[0] = np.nan
    elif pattern == "all_but_one":
        keep = int(rng.integers(n))
        mask = np.ones(n, dtype=bool)
        mask[keep] = False
        y[mask] = np.nan
    elif pattern == "all":
        y[:] = np.nan
    else:
        raise ValueError(f"unknown missing pattern {pattern!r}")
    return y


def steps_to_steady_state(system: System, rtol: float = 1e-11, max_steps: int = 2000) -> int:
    """Steps until the predicted covariance of a constant, fully observed model settles.

    Iterates the Riccati recursion in numpy and returns the first t with
    max|P_t - P_bar| <= rtol * max|P_bar|, P_bar being the last iterate (max_steps if never).
    """
    f, q, h = system.transition_matrix, system.transition_cov, system.observation_matrix
    r = float(system.observation_var)
    assert f.ndim == 2 and q.ndim == 2 and h.ndim == 1, "constant dynamics only"
    p = np.array(system.initial_cov, dtype=np.float64)
    history = []
    for _ in range(max_steps):
        gain = p @ h / (h @ p @ h + r)
        p = f @ (p - np.outer(gain, h @ p)) @ f.T + q
        history.append(p)
    scale = np.abs(p).max()
    for t, pt in enumerate(history):
        if np.abs(pt - p).max() <= rtol * scale:
            return t
    return max_steps


# --------------------------------------------------------------------------------------
# Dense multivariate-normal oracle
# --------------------------------------------------------------------------------------


class DenseOracle:
    """The joint Gaussian of (x_0..x_{T-1}, y_0..y_{T-1}) built densely, and its conditionals.

    States are stacked as a vector of length T*d (x_0 first). Conditionals are computed by
    Cholesky-solving against the covariance of the conditioning observations.
    """

    def __init__(self, system: System, num_steps: int):
        s = system.expanded(num_steps)
        n, d = num_steps, s.state_dim
        self.num_steps, self.state_dim = n, d

        mean = np.zeros((n, d))
        cov = np.zeros((n * d, n * d))
        mean[0] = s.initial_mean
        cov[:d, :d] = s.initial_cov
        for t in range(n - 1):
            f = s.transition_matrix[t]
            cur, nxt = slice(t * d, (t + 1) * d), slice((t + 1) * d, (t + 2) * d)
            mean[t + 1] = f @ mean[t]
            cross = f @ cov[cur, : (t + 1) * d]  # Cov(x_{t+1}, x_{0..t})
            cov[nxt, : (t + 1) * d] = cross
            cov[: (t + 1) * d, nxt] = cross.T
            cov[nxt, nxt] = f @ cov[cur, cur] @ f.T + s.transition_cov[t]

        design = np.zeros((n, n * d))
        for t in range(n):
            design[t, t * d : (t + 1) * d] = s.observation_matrix[t]

        self.state_mean = mean.reshape(-1)
        self.state_cov = cov
        self.y_mean = design @ self.state_mean + s.observation_offset
        self.y_cov = design @ cov @ design.T + np.diag(s.observation_var)
        self.state_y_cov = cov @ design.T

    # -- conditionals -----------------------------------------------------------------

    def condition_states(
        self, y: np.ndarray, observed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean (T, d) and joint covariance (T*d, T*d) of the states given y[observed]."""
        idx = np.flatnonzero(observed)
        if idx.size == 0:
            mean, cov = self.state_mean, self.state_cov
        else:
            chol = scipy.linalg.cho_factor(self.y_cov[np.ix_(idx, idx)], lower=True)
            cross = self.state_y_cov[:, idx]
            mean = self.state_mean + cross @ scipy.linalg.cho_solve(chol, y[idx] - self.y_mean[idx])
            cov = self.state_cov - cross @ scipy.linalg.cho_solve(chol, cross.T)
        return mean.reshape(self.num_steps, self.state_dim), 0.5 * (cov + cov.T)

    def _marginals(self, y: np.ndarray, observed: np.ndarray):
        mean, cov = self.condition_states(y, observed)
        return mean, self.block_diagonal(cov)

    def block_diagonal(self, cov: np.ndarray) -> np.ndarray:
        """The (T, d, d) per-step blocks of a stacked (T*d, T*d) state covariance."""
        d = self.state_dim
        return np.stack(
            [cov[t * d : (t + 1) * d, t * d : (t + 1) * d] for t in range(self.num_steps)]
        )

    def smoothed(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E[x_t | all observed y] (T, d) and Cov (T, d, d)."""
        return self._marginals(y, ~np.isnan(y))

    def filtered(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E[x_t | observed y_{<=t}] and the matching covariances."""
        return self._per_step(y, inclusive=True)

    def predicted(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E[x_t | observed y_{<t}] and the matching covariances."""
        return self._per_step(y, inclusive=False)

    def _per_step(self, y: np.ndarray, inclusive: bool):
        n, d = self.num_steps, self.state_dim
        means, covs = np.zeros((n, d)), np.zeros((n, d, d))
        steps = np.arange(n)
        for t in range(n):
            upto = steps <= t if inclusive else steps < t
            mean, cov = self._marginals(y, upto & ~np.isnan(y))
            means[t], covs[t] = mean[t], cov[t]
        return means, covs

    def total_log_likelihood(self, y: np.ndarray) -> float:
        """log p(observed y), by scipy's multivariate normal (0 when nothing is observed)."""
        idx = np.flatnonzero(~np.isnan(y))
        if idx.size == 0:
            return 0.0
        return float(
            scipy.stats.multivariate_normal.logpdf(
                y[idx], mean=self.y_mean[idx], cov=self.y_cov[np.ix_(idx, idx)]
            )
        )

    def pointwise_log_likelihood(self, y: np.ndarray) -> np.ndarray:
        """log p(y_t | observed y_{<t}) for observed t, and 0 where y_t is missing."""
        out = np.zeros(self.num_steps)
        for t in np.flatnonzero(~np.isnan(y)):
            prev = np.flatnonzero(~np.isnan(y[:t]))
            mean, var = self.y_mean[t], self.y_cov[t, t]
            if prev.size:
                chol = scipy.linalg.cho_factor(self.y_cov[np.ix_(prev, prev)], lower=True)
                cross = self.y_cov[t, prev]
                mean = mean + cross @ scipy.linalg.cho_solve(chol, y[prev] - self.y_mean[prev])
                var = var - cross @ scipy.linalg.cho_solve(chol, cross)
            out[t] = scipy.stats.norm.logpdf(y[t], loc=mean, scale=np.sqrt(var))
        return out


# --------------------------------------------------------------------------------------
# Structural models
# --------------------------------------------------------------------------------------


def llt_seasonal_system(
    *,
    sigma2_obs: float,
    sigma2_level: float,
    sigma2_slope: float,
    sigma2_seasonal: float,
    initial_mean: np.ndarray,
    initial_cov: np.ndarray,
    period: int = 12,
) -> System:
    """Local linear trend + dummy seasonal, time-invariant (2-D) fields.

    State: [level, slope, s_t, s_{t-1}, ..., s_{t-period+2}], d = period + 1. This is the
    same layout as statsmodels' `UnobservedComponents(level='local linear trend', seasonal=p)`.
    """
    d = period + 1
    f = np.zeros((d, d))
    f[0, 0] = f[0, 1] = f[1, 1] = 1.0
    f[2, 2:] = -1.0
    for j in range(3, d):
        f[j, j - 1] = 1.0
    q = np.zeros((d, d))
    q[0, 0], q[1, 1], q[2, 2] = sigma2_level, sigma2_slope, sigma2_seasonal
    h = np.zeros(d)
    h[0] = h[2] = 1.0
    return System(
        f,
        q,
        h,
        np.array(0.0),
        np.array(sigma2_obs),
        np.asarray(initial_mean, dtype=np.float64),
        np.asarray(initial_cov, dtype=np.float64),
    )


def local_level_system(
    sigma2_obs: float, sigma2_level: float, initial_mean: float, initial_var: float
) -> System:
    """The local-level model with time-invariant (2-D) fields."""
    return System(
        np.eye(1),
        np.array([[sigma2_level]]),
        np.ones(1),
        np.array(0.0),
        np.array(sigma2_obs),
        np.array([initial_mean]),
        np.array([[initial_var]]),
    )


NILE_LOG_LIKELIHOOD = -638.6834469922517


def nile_data() -> np.ndarray:
    """The Nile annual flow volumes 1871-1970 (100 values)."""
    import statsmodels.api as sm

    return sm.datasets.nile.load_pandas().data["volume"].to_numpy(dtype=np.float64)


def nile_system() -> System:
    """Local level with sigma2_obs = 15099, sigma2_level = 1469.1, x_0 ~ N(1000, 1e4)."""
    return local_level_system(15099.0, 1469.1, 1000.0, 1e4)


def co2_monthly() -> np.ndarray:
    """Mauna Loa CO2 (statsmodels' weekly data) as monthly means; the 5 empty months are NaN."""
    import statsmodels.api as sm

    data = sm.datasets.co2.load_pandas().data["co2"]
    return data.resample("MS").mean().to_numpy(dtype=np.float64)


def co2_system(first_value: float) -> System:
    """LLT + seasonal(12) with variances in ppm² suited to the monthly CO2 series."""
    d = 13
    m0 = np.zeros(d)
    m0[0] = first_value
    return llt_seasonal_system(
        sigma2_obs=0.1,
        sigma2_level=0.01,
        sigma2_slope=1e-5,
        sigma2_seasonal=1e-3,
        initial_mean=m0,
        initial_cov=10.0 * np.eye(d),
    )


# --------------------------------------------------------------------------------------
# Jitted runners (compiled once per shape / dtype, shared by all tests)
# --------------------------------------------------------------------------------------


def _ssm_from(arrays):
    from bsts.kalman import StateSpace

    return StateSpace(**dict(_named(arrays)))


@functools.partial(jax.jit, static_argnames="parallel")
def _filter_jit(arrays, y, parallel):
    from bsts.kalman import kalman_filter

    res = kalman_filter(_ssm_from(arrays), y, parallel=parallel)
    return {
        "log_likelihood": res.log_likelihood,
        "filtered_mean": res.filtered_mean,
        "filtered_cov": res.filtered_cov,
        "predicted_mean": res.predicted_mean,
        "predicted_cov": res.predicted_cov,
    }


@jax.jit
def _log_likelihood_jit(arrays, y):
    from bsts.kalman import log_likelihood

    return log_likelihood(_ssm_from(arrays), y)


@jax.jit
def _smoother_jit(arrays, y):
    from bsts.kalman import kalman_smoother

    res = kalman_smoother(_ssm_from(arrays), y)
    return {"smoothed_mean": res.smoothed_mean, "smoothed_cov": res.smoothed_cov}


def run_filter(system: System, y, *, parallel: bool = False, dtype=np.float64) -> dict:
    """kalman_filter outputs as a dict of numpy arrays."""
    out = _filter_jit(system.arrays(dtype), jnp.asarray(y, dtype=dtype), parallel)
    return {k: np.asarray(v) for k, v in out.items()}


def run_log_likelihood(system: System, y, *, dtype=np.float64) -> np.ndarray:
    """log_likelihood output as a numpy array."""
    return np.asarray(_log_likelihood_jit(system.arrays(dtype), jnp.asarray(y, dtype=dtype)))


def run_smoother(system: System, y, *, dtype=np.float64) -> dict:
    """kalman_smoother outputs as a dict of numpy arrays."""
    out = _smoother_jit(system.arrays(dtype), jnp.asarray(y, dtype=dtype))
    return {k: np.asarray(v) for k, v in out.items()}


def scaled_atol(expected: np.ndarray, rel: float) -> float:
    """An absolute tolerance of `rel` times the magnitude of `expected` (at least rel)."""
    return rel * max(1.0, float(np.max(np.abs(expected), initial=0.0)))
