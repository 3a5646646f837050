"""The one place where bsts talks to ArviZ.

ArviZ 0.x (0.23 is what Python 3.11 resolves) stores draws in an ``arviz.InferenceData``;
ArviZ 1.x (what Python 3.12+ resolves) stores them in an ``xarray.DataTree`` and moved the
statistics into ``arviz_stats`` with different argument names, column names and result
objects. Every other bsts module goes through the helpers here, so the version differences
live in this file alone.

The helpers return ArviZ's native container (whatever the installed version builds) and
uniform plain objects for everything derived from it: an ``xarray.Dataset`` per group, a
``pandas.DataFrame`` with fixed columns for summaries, and a :class:`LooResult` for PSIS-LOO.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

with warnings.catch_warnings():
    # ArviZ 0.2x announces its 1.0 refactor with a FutureWarning on import; this module
    # is exactly the shim that absorbs that refactor, so the notice is only noise here.
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

__all__ = [
    "ARVIZ_MAJOR",
    "SUMMARY_COLUMNS",
    "LooResult",
    "get_group",
    "group_names",
    "loo",
    "plot_chains",
    "summary",
    "to_inference_data",
]

ARVIZ_MAJOR: int = int(str(az.__version__).split(".", 1)[0])
"""Major version of the installed ArviZ (0 for the InferenceData API, 1+ for DataTree)."""

SUMMARY_COLUMNS: tuple[str, ...] = ("mean", "sd", "hdi_lower", "hdi_upper", "ess_bulk", "r_hat")
"""Columns of the frame returned by :func:`summary`, in order, for every ArviZ version."""

_SAMPLE_DIMS = ("chain", "draw")
_GROUPS = ("posterior", "sample_stats", "observed_data", "log_likelihood")
_DataTree: type | None = getattr(xr, "DataTree", None)


@dataclass(frozen=True, eq=False)
class LooResult:
    """PSIS-LOO estimate, read the same way whatever the ArviZ version.

    Attributes:
        elpd: Estimated expected log pointwise predictive density (log scale, higher is better).
        se: Standard error of ``elpd``.
        p_loo: Effective number of parameters.
        pareto_k: Pareto shape diagnostic per observation, shaped like the observations of the
            log-likelihood variable (a 1-D array for a vector of observations). Read-only.
        pointwise: the elpd contribution of each observation, shaped like ``pareto_k`` (its
            sum is ``elpd``), for paired comparisons of models. Read-only.
    """

    elpd: float
    se: float
    p_loo: float
    pareto_k: np.ndarray
    pointwise: np.ndarray | None = None


def _as_draws(group: str, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Convert a group's arrays to NumPy and check the leading (chain, draw) axes."""
    out = {}
    for name, value in values.items():
        arr = np.asarray(value)
        if arr.ndim < 2:
            raise ValueError(
                f"{group}[{name!r}] must have leading (chain, draw) axes; got shape {arr.shape}"
            )
        out[name] = arr
    return out


def to_inference_data(
    posterior: dict[str, np.ndarray],
    *,
    sample_stats: dict | None = None,
    observed_data: dict | None = None,
    log_likelihood: dict | None = None,
    coords: dict | None = None,
    dims: dict | None = None,
) -> Any:
    """Build ArviZ's native container from arrays of draws.

    Args:
        posterior: Variable name to array of draws with leading axes (chain, draw).
        sample_stats: Sampler statistics (e.g. ``"diverging"``), leading axes (chain, draw).
        observed_data: Observed arrays, without chain or draw axes.
        log_likelihood: Pointwise log-likelihood per observed variable, leading axes
            (chain, draw) followed by the observation axes.
        coords: Dimension name to coordinate values, shared by all groups.
        dims: Variable name to the names of its non-sample dimensions, shared by all groups.

    Returns:
        An ``arviz.InferenceData`` on ArviZ 0.x, an ``xarray.DataTree`` on ArviZ 1.x, holding
        the groups "posterior", "sample_stats", "observed_data" and "log_likelihood" (only
        those given; an empty dict counts as not given).

    Raises:
        ValueError: If ``posterior`` is empty or a sampled array lacks the two leading axes.
    """
    if not posterior:
        raise ValueError("posterior must contain at least one variable")
    groups: dict[str, dict[str, np.ndarray]] = {"posterior": _as_draws("posterior", posterior)}
    if sample_stats:
        groups["sample_stats"] = _as_draws("sample_stats", sample_stats)
    if observed_data:
        groups["observed_data"] = {k: np.asarray(v) for k, v in observed_data.items()}
    if log_likelihood:
        groups["log_likelihood"] = _as_draws("log_likelihood", log_likelihood)

    if ARVIZ_MAJOR >= 1:
        return az.from_dict(groups, sample_dims=list(_SAMPLE_DIMS), coords=coords, dims=dims)
    return az.from_dict(**groups, coords=coords, dims=dims)


def _is_datatree(data: Any) -> bool:
    return _DataTree is not None and isinstance(data, _DataTree)


def group_names(data: Any) -> list[str]:
    """List the groups present in an ArviZ container.

    Args:
        data: An ``arviz.InferenceData`` or an ``xarray.DataTree``.

    Returns:
        The group names, e.g. ``["posterior", "sample_stats"]``.
    """
    if _is_datatree(data):
        return [str(name) for name in data.children]
    return list(data.groups())


def get_group(data: Any, name: str) -> xr.Dataset:
    """Return one group of an ArviZ container as an ``xarray.Dataset``.

    Args:
        data: An ``arviz.InferenceData`` or an ``xarray.DataTree``.
        name: Group name, e.g. ``"posterior"``.

    Returns:
        The group's variables as an independent ``xarray.Dataset``.

    Raises:
        KeyError: If the group is not present.
    """
    present = group_names(data)
    if name not in present:
        raise KeyError(f"group {name!r} not present; groups are {present}")
    if _is_datatree(data):
        return data[name].to_dataset()
    return getattr(data, name)


def summary(
    data: Any, var_names: str | Sequence[str] | None = None, hdi_prob: float = 0.9
) -> pd.DataFrame:
    """Summarise the posterior, one row per scalar parameter.

    Vector parameters are expanded as ArviZ labels them (``"beta[0]"``, ``"beta[1]"``, ...).
    Values are unrounded floats in every ArviZ version.

    Args:
        data: Container from :func:`to_inference_data` (or any ArviZ container of the
            installed version) with a "posterior" group.
        var_names: Posterior variables to include; all of them when ``None``.
        hdi_prob: Probability mass of the highest density interval, in (0, 1).

    Returns:
        A DataFrame with columns exactly :data:`SUMMARY_COLUMNS`: posterior mean, standard
        deviation, HDI bounds, bulk effective sample size and rank-normalised split R-hat.

    Raises:
        ValueError: If ``hdi_prob`` is not strictly between 0 and 1.
        RuntimeError: If ArviZ's output lacks the expected HDI columns.
    """
    if not 0.0 < hdi_prob < 1.0:
        raise ValueError(f"hdi_prob must be in (0, 1); got {hdi_prob}")
    if isinstance(var_names, str):
        var_names = [var_names]
    elif var_names is not None:
        var_names = list(var_names)

    if ARVIZ_MAJOR >= 1:
        # 1.x defaults to an equal-tailed interval and to string-formatted rounding.
        raw = az.summary(
            data,
            var_names=var_names,
            group="posterior",
            kind="all",
            fmt="wide",
            ci_prob=hdi_prob,
            ci_kind="hdi",
            round_to="none",
        )
        lower = [c for c in raw.columns if str(c).startswith("hdi") and str(c).endswith("_lb")]
        upper = [c for c in raw.columns if str(c).startswith("hdi") and str(c).endswith("_ub")]
    else:
        raw = az.summary(
            data,
            var_names=var_names,
            group="posterior",
            kind="all",
            fmt="wide",
            hdi_prob=hdi_prob,
            round_to="none",
        )
        hdi_cols = [c for c in raw.columns if str(c).startswith("hdi_")]
        lower, upper = hdi_cols[:1], hdi_cols[1:]
    if len(lower) != 1 or len(upper) != 1:
        raise RuntimeError(f"unexpected ArviZ summary columns: {list(raw.columns)}")

    picked = raw[["mean", "sd", lower[0], upper[0], "ess_bulk", "r_hat"]]
    return pd.DataFrame(
        picked.to_numpy(dtype=float),
        index=pd.Index([str(label) for label in raw.index]),
        columns=list(SUMMARY_COLUMNS),
    )


def loo(data: Any, var_name: str | None = None) -> LooResult:
    """Estimate PSIS-LOO from the pointwise "log_likelihood" group.

    ArviZ's own warnings (e.g. about high Pareto k) are passed through unchanged.

    Args:
        data: Container with "posterior" and "log_likelihood" groups.
        var_name: Log-likelihood variable to use; needed only when the group holds several.

    Returns:
        The elpd estimate (log scale), its standard error, the effective number of parameters
        and the per-observation Pareto k values.
    """
    if ARVIZ_MAJOR >= 1:
        res = az.loo(data, pointwise=True, var_name=var_name)
        scale = getattr(res, "scale", "log")
        if scale != "log":  # 1.x has no scale argument; guard against a changed default.
            raise RuntimeError(f"expected ArviZ LOO on the log scale, got {scale!r}")
        elpd, se, p_loo, pareto_k = res.elpd, res.se, res.p, res.pareto_k
        elpd_i = res.elpd_i
    else:
        res = az.loo(data, pointwise=True, var_name=var_name, scale="log")
        elpd, se, p_loo, pareto_k = res["elpd_loo"], res["se"], res["p_loo"], res["pareto_k"]
        elpd_i = res["loo_i"]

    k = np.array(getattr(pareto_k, "values", pareto_k), dtype=float)
    k.setflags(write=False)
    pointwise = np.array(getattr(elpd_i, "values", elpd_i), dtype=float)
    pointwise.setflags(write=False)
    return LooResult(
        elpd=float(elpd), se=float(se), p_loo=float(p_loo), pareto_k=k, pointwise=pointwise
    )


def plot_chains(data: Any, kind: str):
    """Trace or rank plots of every posterior variable, as a matplotlib Figure.

    ArviZ 0.x draws on matplotlib axes and returns them; ArviZ 1.x (arviz-plots) returns a
    `PlotCollection` whose figure sits in its `viz` tree.

    Args:
        data: the posterior's ArviZ data.
        kind: "trace" or "rank".
    """
    import matplotlib.pyplot as plt

    function = {"trace": az.plot_trace, "rank": az.plot_rank}[kind]
    with warnings.catch_warnings():
        # ArviZ's own use of deprecated matplotlib helpers: nothing the caller can act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        if ARVIZ_MAJOR >= 1:
            collection = function(data, backend="matplotlib")
            return collection.viz["figure"].item()
        axes = np.atleast_1d(function(data))
    figure = axes.flat[0].figure
    plt.figure(figure.number)  # keep it current, as pyplot users expect
    return figure
