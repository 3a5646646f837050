"""Tutorial: classify days of Italian power demand as winter or summer days.

ItalyPowerDemand (UCR archive, shipped with bsts): 24 hourly values of Italy's power
demand per day of 1997, labelled by half of the year (October to March, April to
September). `bsts.analysis.Classifier` fits a structural model (local level + AR(1), with
a class shape as a regression offset) to every training day, in batched programs, and
classifies a new day by its exact likelihood under each class's models, with calibrated
probabilities.

    python examples/classification.py --out classification-output   # the analysis
    python examples/classification.py --quick --out /tmp/clf         # a smoke test

Writes confusion.csv, scores.csv, confusion.png and days.png to --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    """The command line: `--quick` and `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 test days (a smoke test)")
    parser.add_argument("--out", default="classification-output", help="folder for outputs")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    """Run the tutorial."""
    args = parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    import bsts
    from bsts.analysis import Classifier

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    X_train, y_train, X_test, y_test = bsts.datasets.load_labelled("italy_power_demand")
    if args.quick:
        X_test, y_test = X_test[:100], y_test[:100]
    print(f"{len(X_train)} training days, {len(X_test)} test days, 24 hours each")

    classifier = Classifier().fit(X_train, y_train)
    probabilities = classifier.predict_proba(X_test)
    predicted = classifier.classes_[probabilities.argmax(axis=1)]
    codes = np.searchsorted(classifier.classes_, y_test)
    frequencies = np.bincount(np.searchsorted(classifier.classes_, y_train)) / len(y_train)
    scores = pd.Series(
        {
            "accuracy": np.mean(predicted == y_test),
            "log loss": -np.mean(np.log(probabilities[np.arange(codes.size), codes])),
            "log loss of the class frequencies": -np.mean(np.log(frequencies[codes])),
            "Brier score": np.mean(
                np.sum((probabilities - np.eye(classifier.classes_.size)[codes]) ** 2, axis=1)
            ),
            "temperature": classifier.temperature_,
        }
    )
    scores.to_csv(out / "scores.csv", header=["value"])
    print(scores.round(4).to_string())
    confusion = pd.crosstab(
        pd.Series(y_test, name="actual"), pd.Series(predicted, name="predicted")
    )
    confusion.to_csv(out / "confusion.csv")
    print(confusion.to_string())

    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(confusion.to_numpy(), cmap="Blues")
    counts = confusion.to_numpy()
    for (i, j), count in np.ndenumerate(counts):
        shade = "white" if count > counts.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=shade)
    ax.set_xticks(range(confusion.shape[1]), confusion.columns)
    ax.set_yticks(range(confusion.shape[0]), confusion.index)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class")
    fig.savefig(out / "confusion.png", dpi=110, bbox_inches="tight")

    # A few training days per class, each fitted with its class's mean shape (the day
    # itself left out) as a regression offset, as the classifier's class template does:
    # the template part carries the shape, the level and the AR(1) the day's deviations.
    model = (
        bsts.LocalLevel() + bsts.Autoregressive(1) + bsts.Regression(["template"], name="template")
    )
    hours = pd.RangeIndex(24, name="hour")
    fig, axes = plt.subplots(2, 3, figsize=(10, 5), sharex=True, sharey=True)
    for row, label in zip(axes, classifier.classes_, strict=True):
        members = np.flatnonzero(y_train == label)
        for ax, day in zip(row, members[:3], strict=True):
            others = members[members != day]
            frame = pd.DataFrame(
                {"demand": X_train[day], "template": X_train[others].mean(axis=0)}, index=hours
            )
            parts = bsts.decompose(bsts.fit(model, frame, "demand", method="map")).to_pandas()
            ax.plot(hours, frame["demand"], ".", color="0.3", label="demand (z-score)")
            ax.plot(hours, parts["template"]["mean"], color="C2", label="class shape part")
            deviation = parts["level"]["mean"] + parts["ar"]["mean"]
            ax.plot(hours, deviation, color="C0", label="level + AR(1)")
            ax.set_title(f"class {label}, training day {day}", fontsize=9)
    axes[-1, 0].legend(loc="upper center", bbox_to_anchor=(1.6, -0.2), ncols=3, frameon=False)
    for ax in axes[-1]:
        ax.set_xlabel("hour")
    fig.savefig(out / "days.png", dpi=110, bbox_inches="tight")
    plt.close("all")
    print(f"wrote figures and tables to {out.resolve()}")


if __name__ == "__main__":
    main()
