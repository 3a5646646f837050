"""The steady-state Riccati solution against SciPy's as the observation variance vanishes.

At the bundled half-hourly electricity series' MAP (LocalLevel + FourierSeasonal(48, 3) +
FourierSeasonal(336, 3), its last 17,520 points, fitted in float64) the observation
variance is nearly zero. With that model's F, Q and H and a range of observation
variances r, prints the largest entry of `riccati_fixed_point`'s solution, its relative
difference from `scipy.linalg.solve_discrete_are` (QZ-based), and whether it passes
`steady_state_holds` (the test the closed-form likelihood applies), in float64 and float32.

Usage:
    python benchmarks/riccati_accuracy.py
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

import bsts  # noqa: E402
from bsts.kalman.riccati import riccati_fixed_point, steady_state_holds  # noqa: E402


def main() -> None:
    frame = bsts.datasets.load("electricity_halfhourly")[["demand"]].iloc[-17_520:]
    model = (
        bsts.LocalLevel()
        + bsts.FourierSeasonal(48, harmonics=3, name="daily")
        + bsts.FourierSeasonal(336, harmonics=3, name="weekly")
    )
    mode = bsts.fit(model, frame, target="demand", method="map")
    ssm = jax.tree_util.tree_map(lambda a: a[0], mode.state_spaces())
    F, Q, H = (
        np.asarray(a, float)
        for a in (ssm.transition_matrix, ssm.transition_cov, ssm.observation_matrix)
    )
    r_mode = float(ssm.observation_var)
    print(f"MAP observation variance (standardised): {r_mode:.3g}")
    print("| r | SciPy max entry | float64: rel. diff, passes | float32: rel. diff, passes |")
    print("|---|---|---|---|")
    for r in (r_mode, 6.5e-13, 1e-10, 1e-8, 1e-6, 1e-4):
        expected = scipy.linalg.solve_discrete_are(F.T, H[:, None], Q, np.array([[r]]))
        cells = [f"{r:.2g}", f"{np.abs(expected).max():.4g}"]
        for dtype in (np.float64, np.float32):
            arrays = tuple(jnp.asarray(a, dtype) for a in (F, Q, H, r))
            P_bar = riccati_fixed_point(*arrays)
            diff = np.abs(np.asarray(P_bar, float) - expected).max() / np.abs(expected).max()
            cells.append(f"{diff:.1e}, {bool(steady_state_holds(P_bar, *arrays))}")
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
