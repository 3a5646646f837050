r"""A compact BFGS minimiser whose objective appears once in the compiled program.

`jax.scipy.optimize.minimize` calls the objective's value and gradient from several places
(the start, and the zoom stages of its Wolfe line search). Each place compiles the whole
objective again, and for a state-space likelihood with its fallback filter that made a
posterior-mode program take about 6 s to compile. Here a single `lax.while_loop` takes
one evaluation per iteration and decides from its outcome whether it was a step
(sufficient decrease: accept it and update the curvature) or a line-search trial (no
decrease: shrink the step). The objective is then compiled once.

The update is the standard inverse-Hessian BFGS update (Nocedal & Wright, 2006, eq. 6.17),

$$
H_{k+1} = (I - \rho s y^\top) H_k (I - \rho y s^\top) + \rho s s^\top,
\qquad \rho = 1 / (y^\top s),
$$

skipped when the curvature $y^\top s$ is not positive, with the first step's scaling
$H_0 = (y^\top s / y^\top y) I$ (their eq. 6.20). The line search backtracks from the
unit step until the Armijo condition $f(x + \alpha d) \le f(x) + c_1 \alpha\, g^\top d$
holds. When it cannot (the direction has gone bad, or round-off hides any decrease) the
curvature estimate is reset to steepest descent; a second failure in a row means no
representable step decreases $f$, which is where the minimiser stops.

It also stops, much as SciPy's L-BFGS-B does (its `factr`), once two accepted steps in a
row decrease $f$ by round-off only, $f_k - f_{k+1} \le 10\,\epsilon \max(|f_k|, 1)$
each, and the shortest trial step is
$\sqrt{\epsilon}$ of the dtype. In float32 a log density's gradient rarely reaches the
absolute tolerance, and without these two rules every fit ended in two backtracking
searches down to $10^{-8}$ (about 28 evaluations, most of them steps too short to move
a float32 point at all).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

__all__ = ["BFGSResult", "minimize_bfgs"]

_ARMIJO = 1e-4
_SHRINK = 0.25
_GRADIENT_TOLERANCE = 1e-6
_DECREASE_IN_EPS = 10.0


class BFGSResult(NamedTuple):
    """The minimiser's outcome.

    Attributes:
        x: the point reached.
        fun: the objective there.
        initial_fun: the objective at the start.
        evaluations: objective evaluations used.
        converged: whether the gradient vanished (within tolerance) or no step could
            decrease the objective further, rather than the evaluations running out.
        gradient: the objective's gradient at `x`.
    """

    x: Float[Array, " n"]
    fun: Float[Array, ""]
    initial_fun: Float[Array, ""]
    evaluations: Int[Array, ""]
    converged: Array
    gradient: Float[Array, " n"]


class _State(NamedTuple):
    x: Array
    f: Array
    f_start: Array
    g: Array
    inverse_hessian: Array
    direction: Array
    step: Array
    fresh: Array  # the curvature estimate was just reset (or never updated)
    stalled: Array  # the last accepted step decreased f by round-off only
    started: Array  # the start has been evaluated
    evaluations: Array
    done: Array
    converged: Array


def minimize_bfgs(
    fun: Callable[[Float[Array, " n"]], Float[Array, ""]],
    x0: Float[Array, " n"],
    max_evaluations: int = 2000,
) -> BFGSResult:
    """Minimise a smooth function of a flat vector.

    Args:
        fun: the objective; non-finite values count as no decrease.
        x0: the start, where the objective must be finite.
        max_evaluations: the most evaluations of `fun` and its gradient.

    Returns:
        The point reached, its value, the evaluations used and whether it converged.
    """
    value_and_grad = jax.value_and_grad(fun)
    eye = jnp.eye(x0.shape[0], dtype=x0.dtype)
    eps = jnp.finfo(x0.dtype).eps
    smallest_step = jnp.sqrt(eps)
    # The start is evaluated by the loop's first iteration (a trial at x0), so that the
    # objective has one call site.
    start = _State(
        x=x0,
        f=jnp.array(jnp.inf, x0.dtype),
        f_start=jnp.array(jnp.nan, x0.dtype),
        g=jnp.zeros_like(x0),
        inverse_hessian=eye,
        direction=jnp.zeros_like(x0),
        step=jnp.zeros((), x0.dtype),
        fresh=jnp.array(True),
        stalled=jnp.array(False),
        started=jnp.array(False),
        evaluations=jnp.array(0),
        done=jnp.array(False),
        converged=jnp.array(False),
    )

    def keep_going(state: _State):
        return ~state.done & (state.evaluations < max_evaluations)

    def iterate(state: _State) -> _State:
        slope = state.g @ state.direction
        trial = state.x + state.step * state.direction
        f_trial, g_trial = value_and_grad(trial)
        finite = jnp.isfinite(f_trial) & jnp.all(jnp.isfinite(g_trial))
        accepted = (
            finite
            & (f_trial <= state.f + _ARMIJO * state.step * slope)
            & (f_trial < state.f)  # a step that round-off makes no decrease is no step
            & (slope < 0)
        )
        branch = jnp.where(state.started, jnp.where(accepted, 1, 2), 0)
        return jax.lax.switch(branch, (_begin, _accept, _backtrack), state, trial, f_trial, g_trial)

    def _begin(state: _State, trial, f_trial, g_trial) -> _State:
        small = jnp.max(jnp.abs(g_trial)) <= _GRADIENT_TOLERANCE
        finite = jnp.isfinite(f_trial) & jnp.all(jnp.isfinite(g_trial))
        return state._replace(
            f=f_trial,
            f_start=f_trial,
            g=g_trial,
            direction=-g_trial,
            step=_gradient_step(g_trial),
            started=jnp.array(True),
            evaluations=state.evaluations + 1,
            done=~finite | small,
            converged=finite & small,
        )

    def _accept(state: _State, trial, f_trial, g_trial) -> _State:
        s = trial - state.x
        y = g_trial - state.g
        curvature = y @ s
        usable = curvature > 1e-10 * jnp.linalg.norm(s) * jnp.linalg.norm(y)
        H = jnp.where(state.fresh, (curvature / (y @ y)) * eye, state.inverse_hessian)
        rho = 1.0 / jnp.where(usable, curvature, 1.0)
        left = eye - rho * jnp.outer(s, y)
        updated = left @ H @ left.T + rho * jnp.outer(s, s)
        H = jnp.where(usable, updated, state.inverse_hessian)
        small = jnp.max(jnp.abs(g_trial)) <= _GRADIENT_TOLERANCE
        stalled = state.f - f_trial <= _DECREASE_IN_EPS * eps * jnp.maximum(jnp.abs(state.f), 1.0)
        return _State(
            x=trial,
            f=f_trial,
            f_start=state.f_start,
            g=g_trial,
            inverse_hessian=H,
            direction=-H @ g_trial,
            step=jnp.ones_like(state.step),
            fresh=~usable & state.fresh,
            stalled=stalled,
            started=state.started,
            evaluations=state.evaluations + 1,
            done=small | (stalled & state.stalled),
            converged=small | (stalled & state.stalled),
        )

    def _backtrack(state: _State, trial, f_trial, g_trial) -> _State:
        step = state.step * _SHRINK
        exhausted = step < smallest_step
        # Out of steps along a quasi-Newton direction: reset to steepest descent. Out of
        # steps along steepest descent as well: no step decreases f, so stop here.
        reset = exhausted & ~state.fresh
        stop = exhausted & state.fresh
        return state._replace(
            inverse_hessian=jnp.where(reset, eye, state.inverse_hessian),
            direction=jnp.where(reset, -state.g, state.direction),
            step=jnp.where(reset, _gradient_step(state.g), step),
            fresh=state.fresh | reset,
            evaluations=state.evaluations + 1,
            done=stop,
            converged=stop,
        )

    final = jax.lax.while_loop(keep_going, iterate, start)
    return BFGSResult(
        final.x,
        final.f,
        final.f_start,
        final.evaluations,
        final.converged,
        final.g,
    )


def _gradient_step(g: Float[Array, " n"]) -> Float[Array, ""]:
    """A first trial step along $-g$ of at most unit length (the curvature is unknown)."""
    return jnp.minimum(1.0, 1.0 / jnp.maximum(jnp.linalg.norm(g), 1e-30)).astype(g.dtype)
