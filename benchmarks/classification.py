"""Classification: bsts.analysis.Classifier against the UCR baselines, in one run.

Per data set: accuracy, log loss and Brier score of each bsts method (generative with its
choices made by out-of-sample log loss or with each template fixed, combined, features),
of 1-NN with Euclidean and DTW distances (aeon), and of catch22 features with a random
forest (pycatch22 through aeon, if installed), with seconds to train and to predict. The
class frequencies' log loss is the calibration floor. Data: the UCR sets aeon ships in
its wheel (read offline), and a simulated set of unevenly sampled series of unequal
lengths whose classes differ only in their dynamics, against resample-then-1-NN.

Needs aeon, which pins its own numpy/pandas: run it from a venv with aeon and bsts, e.g.
`python -m venv venv-aeon && venv-aeon/bin/pip install aeon pycatch22 -e ".[classify]"`.

    python benchmarks/classification.py [--sets GunPoint ItalyPowerDemand uneven] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from bsts.analysis import Classifier
from bsts.batch import clear_cache

# One-hot probabilities (1-NN) give infinite log loss on every error; clip as scikit-learn
# did before 1.5, so that the column is finite and comparable.
_CLIP = 1e-15


def scores(probabilities: np.ndarray, codes: np.ndarray) -> dict:
    """Accuracy, log loss and multi-class Brier score of class probabilities."""
    p = np.clip(probabilities, _CLIP, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    onehot = np.eye(p.shape[1])[codes]
    return {
        "accuracy": float(np.mean(np.argmax(p, axis=1) == codes)),
        "log_loss": float(-np.mean(np.log(p[np.arange(codes.size), codes]))),
        "brier": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
    }


def ucr(name: str):
    """A UCR set from aeon's wheel: lists of 1-D arrays (lengths may differ), and labels."""
    from aeon.datasets import load_classification

    out = []
    for split in ("train", "test"):
        X, y = load_classification(name, split=split)
        series = [np.asarray(x, dtype=float).reshape(-1) for x in X]
        out.append((series, np.asarray(y)))
    return out


def _ou_path(rng, times: np.ndarray, timescale: float) -> np.ndarray:
    x = np.empty(times.size)
    x[0] = rng.normal()
    for k in range(1, times.size):
        decay = np.exp(-(times[k] - times[k - 1]) / timescale)
        x[k] = decay * x[k - 1] + np.sqrt(1 - decay**2) * rng.normal()
    return x


def uneven(num_train: int = 40, num_test: int = 200, seed: int = 0):
    """Two classes of OU process plus noise that differ only in their time scale (1 vs 6
    time units), each series observed at random (Poisson) times over a random span, with
    30 to 120 points: the same marginal variance, no shape to align."""
    rng = np.random.default_rng(seed)

    def draw(n):
        series, labels = [], []
        for i in range(n):
            label = i % 2
            size = int(rng.integers(30, 121))
            times = np.cumsum(rng.exponential(0.7, size))
            values = _ou_path(rng, times, (1.0, 6.0)[label]) + 0.3 * rng.normal(size=size)
            series.append(pd.Series(values, index=pd.Index(times)))
            labels.append(("fast", "slow")[label])
        return series, np.array(labels)

    return [draw(num_train), draw(num_test)]


def resampled(series: list, length: int = 64) -> np.ndarray:
    """Each series linearly interpolated onto `length` equally spaced points of its span."""
    rows = []
    for s in series:
        values = np.asarray(s, dtype=float)
        times = np.asarray(s.index, dtype=float) if isinstance(s, pd.Series) else None
        times = np.arange(values.size, dtype=float) if times is None else times
        keep = ~np.isnan(values)
        grid = np.linspace(times[keep][0], times[keep][-1], length)
        rows.append(np.interp(grid, times[keep], values[keep]))
    return np.stack(rows)


def _timed(fit, predict):
    start = time.perf_counter()
    fit()
    trained = time.perf_counter() - start
    start = time.perf_counter()
    probabilities = predict()
    return probabilities, trained, time.perf_counter() - start


def run_set(name: str, quick: bool) -> list[dict]:
    """Every method on one data set."""
    (X_train, y_train), (X_test, y_test) = uneven() if name == "uneven" else ucr(name)
    if quick:
        X_test, y_test = X_test[:60], y_test[:60]
    classes, train_codes = np.unique(y_train, return_inverse=True)
    test_codes = np.searchsorted(classes, y_test)
    frequencies = np.bincount(train_codes, minlength=classes.size) / train_codes.size
    rows = [
        {
            "set": name,
            "method": "class frequencies",
            **scores(np.tile(frequencies, (test_codes.size, 1)), test_codes),
        }
    ]
    bsts_methods = {
        "bsts generative": {"method": "generative"},
        "bsts generative, member templates": {"method": "generative", "template": "members"},
        "bsts generative, class template": {"method": "generative", "template": "class"},
        "bsts generative, no template": {"method": "generative", "template": None},
        "bsts combined": {"method": "combined"},
        "bsts features": {"method": "features"},
    }
    for label, settings in bsts_methods.items():
        # Each method pays its own compilations, as in a fresh process.
        clear_cache()
        classifier = Classifier(**settings)
        p, trained, predicted = _timed(
            lambda c=classifier: c.fit(X_train, y_train),
            lambda c=classifier: c.predict_proba(X_test),
        )
        chosen = ""
        if settings["method"] != "features":
            chosen = (
                f"{classifier.template_} / {classifier.pooling_} / {classifier.member_fit_}"
                f" / tau {classifier.temperature_:.2f}"
            )
        rows.append(
            {
                "set": name,
                "method": label,
                **scores(p, test_codes),
                "train_s": trained,
                "predict_s": predicted,
                "template / pooling / member fit / tau": chosen,
            }
        )
        print(rows[-1], flush=True)
    rows += _peers(name, X_train, train_codes, X_test, test_codes, classes.size)
    return rows


def _peers(name, X_train, train_codes, X_test, test_codes, num_classes) -> list[dict]:
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    equal = len({len(x) for x in [*X_train, *X_test]}) == 1 and name != "uneven"
    if equal:
        train, test = np.stack(X_train)[:, None, :], np.stack(X_test)[:, None, :]
        label = ""
    else:
        train, test = resampled(X_train)[:, None, :], resampled(X_test)[:, None, :]
        label = " (resampled to 64)"
    peers = {
        f"1-NN Euclidean{label}": lambda: KNeighborsTimeSeriesClassifier(distance="euclidean"),
        f"1-NN DTW{label}": lambda: KNeighborsTimeSeriesClassifier(distance="dtw"),
    }
    try:
        import pycatch22  # noqa: F401
        from aeon.classification.feature_based import Catch22Classifier

        peers[f"catch22 + random forest{label}"] = lambda: Catch22Classifier(random_state=0)
    except ImportError:
        print("pycatch22 is not installed: no catch22 row")
    rows = []
    for label, make in peers.items():
        model = make()
        p, trained, predicted = _timed(
            lambda m=model: m.fit(train, train_codes), lambda m=model: m.predict_proba(test)
        )
        full = np.zeros((test_codes.size, num_classes))
        full[:, np.asarray(model.classes_, dtype=int)] = p
        rows.append(
            {
                "set": name,
                "method": label,
                **scores(full, test_codes),
                "train_s": trained,
                "predict_s": predicted,
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    """Run the sets and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", nargs="+", default=["GunPoint", "ItalyPowerDemand", "uneven"])
    parser.add_argument("--quick", action="store_true", help="60 test series per set")
    args = parser.parse_args()
    rows = []
    for name in args.sets:
        rows += run_set(name, args.quick)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
