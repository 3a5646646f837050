"""The `bsts` command: component specifications, `bsts fit` and `bsts demo` end to end,
and one-line errors with exit status 2."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import bsts
from bsts.cli import CommandError, main, parse_components

FAST = ["--method", "svi", "--samples", "50"]


@pytest.mark.parametrize(
    ("spec", "kinds"),
    [
        ("trend", ["LocalLinearTrend"]),
        ("trend+seasonal(12)", ["LocalLinearTrend", "Seasonal"]),
        (
            " level + fourier(52.18, 3) + ar(2) ",
            ["LocalLevel", "FourierSeasonal", "Autoregressive"],
        ),
        (
            "semitrend+regression(x1, X2)+dynamic(x3)",
            ["SemiLocalLinearTrend", "Regression", "DynamicRegression"],
        ),
        ("Trend+Seasonal(7,24)", ["LocalLinearTrend", "Seasonal"]),
    ],
)
def test_parse_components(spec, kinds):
    model = parse_components(spec)
    assert [type(c).__name__ for c in model.components] == kinds


def test_parsed_arguments_reach_the_components():
    model = parse_components("seasonal(7,24)+fourier(52.18,3)+regression(x1, X2)")
    seasonal, fourier, regression = model.components
    assert (seasonal.period, seasonal.duration) == (7, 24)
    assert (fourier.period, fourier.harmonics) == (52.18, 3)
    assert regression.columns == ["x1", "X2"]  # column names keep their case


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("trend+wave(3)", "unknown component 'wave'"),
        ("seasonal", r"seasonal\(...\) takes 1 to 2 argument\(s\), got 0"),
        ("seasonal(twelve)", "'twelve' is not a int"),
        ("seasonal(1)", "period"),
        ("regression()", "at least one column"),
        ("trend+", "cannot read component ''"),
    ],
)
def test_bad_specifications(spec, message):
    with pytest.raises(CommandError, match=message):
        parse_components(spec)


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    dates = pd.date_range("2020-01-01", periods=60, freq="D")
    x = rng.normal(size=66)
    y = 10 + np.cumsum(rng.normal(0, 0.2, 60)) + 2 * x[:60] + rng.normal(0, 0.3, 60)
    pd.DataFrame({"date": dates, "sales": y, "x": x[:60]}).to_csv(folder / "data.csv", index=False)
    future_dates = pd.date_range("2020-03-01", periods=6, freq="D")
    pd.DataFrame({"date": future_dates, "x": x[60:]}).to_csv(folder / "future.csv", index=False)
    return folder


def test_fit_writes_every_output(csv_files, capsys):
    out = csv_files / "out"
    code = main(
        [
            "fit",
            "--csv",
            str(csv_files / "data.csv"),
            "--time-col",
            "date",
            "--target",
            "sales",
            "--components",
            "level+regression(x)",
            "--future-csv",
            str(csv_files / "future.csv"),
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert code == 0
    for name in ("forecast.csv", "forecast.png", "components.png", "summary.csv"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "forecast.csv", index_col=0)
    assert list(table.columns) == ["mean", "median", "lower", "upper"]
    assert len(table) == 6
    assert "regression.coefficients[0]" in pd.read_csv(out / "summary.csv", index_col=0).index
    printed = capsys.readouterr().out
    assert "wrote summary.csv, forecast.csv" in printed and str(out.resolve()) in printed
    assert "regression.coefficients[0]" in printed  # the whole table, no elided columns
    assert "..." not in printed.split("\n", 1)[1]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--csv", "missing.csv"], "no such file: missing.csv"),
        (["--time-col", "when"], "has no column 'when'"),
        (["--target", "profit"], "no column 'profit'"),
        (["--components", "trend+wave"], "unknown component 'wave'"),
        (["--components", "level+regression(z)"], "'z'"),
        (["--components", "regression(x)"], "at least one component with states"),
        (["--horizon", "0"], "--horizon must be positive"),
    ],
)
def test_fit_errors_are_one_line(csv_files, capsys, arguments, message):
    base = {
        "--csv": str(csv_files / "data.csv"),
        "--time-col": "date",
        "--target": "sales",
        "--horizon": "3",
    }
    for flag, value in zip(arguments[::2], arguments[1::2], strict=True):
        base[flag] = value
    argv = [
        "fit",
        *[item for pair in base.items() for item in pair],
        *FAST,
        "--out",
        str(csv_files / "bad"),
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("bsts: error:") and message in error
    assert "\n" not in error and "Traceback" not in error


def test_help_documents_the_components():
    result = subprocess.run(
        [sys.executable, "-m", "bsts.cli", "fit", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for text in ("--csv", "--time-col", "--future-csv", "seasonal(P[,D])", "regression(x1,x2,...)"):
        assert text in result.stdout


# `bsts demo` runs in the default suite in a fresh float32 interpreter
# (test_user_paths.py); this in-process run checks its outputs in detail.
@pytest.mark.slow
def test_demo_with_small_settings(tmp_path, capsys):
    settings = ["--warmup", "100", "--samples", "100", "--chains", "1"]
    code = main(["demo", "--out", str(tmp_path), *settings])
    assert code == 0
    forecast = pd.read_csv(tmp_path / "forecast.csv", index_col=0, parse_dates=True)
    assert len(forecast) == 24
    assert forecast.index[0] == bsts.datasets.load("co2").index[-1] + pd.offsets.MonthBegin()
    summary = pd.read_csv(tmp_path / "summary.csv", index_col=0)
    assert set(summary.index) == {
        "observation.scale",
        "trend.level_scale",
        "trend.slope_scale",
        "seasonal.scale",
    }
    assert "observation.scale" in capsys.readouterr().out
