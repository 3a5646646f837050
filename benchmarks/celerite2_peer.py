"""celerite2's log-likelihood of an OU process plus white noise, timed in its own venv.

Run by `benchmarks/kalman_speed.py --uneven` with `--celerite2-python`; reads an .npz with
`t`, `y`, `sigma2`, `tau`, `noise_var`, `repeats` and prints JSON: the value and the median
forward time (seconds) of `GaussianProcess.log_likelihood` (the GP computed once).
"""

import json
import sys
import time

import celerite2
import numpy as np
from celerite2 import terms


def main() -> None:
    data = np.load(sys.argv[1])
    t, y = data["t"], data["y"]
    # exp(-|dt| / tau) * sigma2: celerite2's RealTerm(a, c) is a * exp(-c |dt|).
    kernel = terms.RealTerm(a=float(data["sigma2"]), c=1.0 / float(data["tau"]))
    gp = celerite2.GaussianProcess(kernel, mean=0.0)

    def value() -> float:
        gp.compute(t, diag=float(data["noise_var"]), quiet=True)
        return gp.log_likelihood(y)

    result = value()
    times = []
    for _ in range(int(data["repeats"])):
        start = time.perf_counter()
        value()
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {"value": result, "seconds": float(np.median(times)), "version": celerite2.__version__}
        )
    )


if __name__ == "__main__":
    main()
