"""The `bsts` command: `bsts demo` and `bsts fit`.

`bsts demo` fits local linear trend + seasonal(12) to the bundled Mauna Loa CO2 series with
NUTS and forecasts 24 months; `bsts fit` does the same job on a CSV file. Both write
`forecast.csv`, `forecast.png`, `components.png` and `summary.csv` to `--out`. Errors in
the arguments or the data end the command with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from bsts.components import (
    Autoregressive,
    Component,
    DynamicRegression,
    FourierSeasonal,
    LocalLevel,
    LocalLinearTrend,
    Regression,
    Seasonal,
    SemiLocalLinearTrend,
)
from bsts.model import Model

__all__ = ["TERMS", "main", "parse_components"]

COMPONENT_HELP = """\
components: terms joined by '+', for example "trend+seasonal(12)+regression(x1,x2)":
  level                    local level (random walk)
  trend                    local linear trend
  semitrend                semi-local linear trend (AR(1) slope)
  seasonal(P[,D])          dummy seasonal with period P steps, each season D steps long
  fourier(P[,K])           trigonometric seasonal, real period P, K harmonics (default 2)
  regression(x1,x2,...)    static regression on covariate columns
  sparse_regression(...)   regression with a regularised horseshoe prior
  dynamic(x1,...)          random-walk regression coefficients
  ar(p)                    stationary autoregression of order p
"""

_TERM = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$", re.IGNORECASE)


class CommandError(Exception):
    """A problem with the command's arguments or data, reported in one line."""


def _numbers(name: str, arguments: list[str], kinds: list[type], required: int):
    if not required <= len(arguments) <= len(kinds):
        expected = f"{required}" if required == len(kinds) else f"{required} to {len(kinds)}"
        raise CommandError(f"{name}(...) takes {expected} argument(s), got {len(arguments)}")
    values = []
    for text, kind in zip(arguments, kinds, strict=False):
        try:
            values.append(kind(text))
        except ValueError:
            raise CommandError(f"{name}(...): {text!r} is not a {kind.__name__}") from None
    return values


# Each term: the component class, its fixed keyword options, and its arguments: a list of
# number types (the first `required` of them needed) or COLUMNS for column names.
COLUMNS = "columns"
TERMS: dict[str, tuple[type[Component], dict, list[type] | str, int]] = {
    "level": (LocalLevel, {}, [], 0),
    "trend": (LocalLinearTrend, {}, [], 0),
    "semitrend": (SemiLocalLinearTrend, {}, [], 0),
    "seasonal": (Seasonal, {}, [int, int], 1),
    "fourier": (FourierSeasonal, {}, [float, int], 1),
    "regression": (Regression, {}, COLUMNS, 1),
    "sparse_regression": (Regression, {"sparse": True}, COLUMNS, 1),
    "dynamic": (DynamicRegression, {}, COLUMNS, 1),
    "ar": (Autoregressive, {}, [int], 1),
}


def _component(name: str, arguments: list[str]) -> Component:
    if name not in TERMS:
        raise CommandError(f"unknown component {name!r}; see --help")
    cls, options, kinds, required = TERMS[name]
    if kinds == COLUMNS:
        if len(arguments) < required:
            raise CommandError(f"{name}(...) needs at least one column name")
        values = [arguments]
    else:
        values = _numbers(name, arguments, kinds, required)
    return cls(*values, **options)


def parse_components(spec: str):
    """Build a `bsts.Model` from a specification such as "trend+seasonal(12)".

    Raises:
        CommandError: an unknown term or bad arguments.
    """
    components = []
    for term in spec.split("+"):
        match = _TERM.match(term)
        if not match:
            raise CommandError(f"cannot read component {term.strip()!r}; see --help")
        name, inner = match.group(1).lower(), match.group(2)
        arguments = [a.strip() for a in inner.split(",")] if inner and inner.strip() else []
        try:
            components.append(_component(name, arguments))
        except ValueError as error:  # the component's own argument checks
            raise CommandError(str(error)) from None
    if not components:
        raise CommandError("no components given")
    return Model(components)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bsts",
        description="Bayesian structural time series: fit, forecast, decompose.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=COMPONENT_HELP,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub):
        sub.add_argument("--out", default="bsts-output", help="output folder (created)")
        sub.add_argument("--method", choices=["nuts", "svi"], default="nuts")
        sub.add_argument("--seed", type=int, default=0, help="random seed")
        sub.add_argument("--chains", type=int, default=2, help="NUTS chains")
        sub.add_argument("--warmup", type=int, default=500, help="NUTS warm-up per chain")
        sub.add_argument("--samples", type=int, default=500, help="draws per chain")

    demo = commands.add_parser(
        "demo",
        help="fit trend + seasonal(12) to the bundled CO2 data and forecast 24 months",
        description="Fit local linear trend + seasonal(12) to monthly Mauna Loa CO2 with "
        "NUTS, forecast 24 months, and write forecast.csv, forecast.png, components.png "
        "and summary.csv.",
    )
    common(demo)

    fit = commands.add_parser(
        "fit",
        help="fit a model to a CSV file and forecast",
        description="Fit a structural model to a column of a CSV file and forecast.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=COMPONENT_HELP,
    )
    fit.add_argument("--csv", required=True, help="input CSV file")
    fit.add_argument("--time-col", required=True, help="column with the timestamps")
    fit.add_argument("--target", required=True, help="column to model")
    fit.add_argument("--components", default="trend", help='model terms (default "trend")')
    fit.add_argument("--horizon", type=int, help="steps to forecast")
    fit.add_argument("--future-csv", help="future covariates (same time column)")
    common(fit)
    return parser


def _read_csv(path: str, time_col: str):
    import pandas as pd

    if not Path(path).is_file():
        raise CommandError(f"no such file: {path}")
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as error:
        raise CommandError(f"cannot read {path} as CSV: {error}") from None
    if time_col not in frame.columns:
        raise CommandError(f"{path} has no column {time_col!r}; columns are {list(frame.columns)}")
    times = frame.pop(time_col)
    parsed = pd.to_datetime(times, errors="coerce")
    if parsed.notna().all():
        frame.index = pd.DatetimeIndex(parsed, name=time_col)
    elif pd.api.types.is_numeric_dtype(times):
        frame.index = pd.Index(times.to_numpy(float), name=time_col)
    else:
        raise CommandError(f"column {time_col!r} of {path} holds neither dates nor numbers")
    return frame


def _run(args) -> int:
    import bsts
    from bsts import datasets, plot

    if args.command == "demo":
        data = datasets.load("co2")
        target, model, horizon, future = "co2", parse_components("trend+seasonal(12)"), 24, None
    else:
        data = _read_csv(args.csv, args.time_col)
        target, model = args.target, parse_components(args.components)
        future = _read_csv(args.future_csv, args.time_col) if args.future_csv else None
        horizon = args.horizon
        if horizon is None and future is None:
            raise CommandError("give --horizon H or --future-csv FILE")
        if target not in data.columns:
            raise CommandError(f"no column {target!r}; columns are {list(data.columns)}")

    interactive = sys.stderr.isatty()
    print(f"fitting {model} to {len(data)} points of {target!r} ({args.method}) ...")
    post = bsts.fit(
        model,
        data,
        target=target,
        method=args.method,
        num_warmup=args.warmup,
        num_samples=args.samples,
        num_chains=args.chains,
        seed=args.seed,
        progress_bar=interactive,
    )
    prediction = bsts.forecast(
        post, horizon=None if future is not None else horizon, future=future, seed=args.seed
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = post.summary()
    files = {
        "summary.csv": lambda p: summary.to_csv(p),
        "forecast.csv": lambda p: prediction.to_pandas(interval=0.9).to_csv(p),
        "forecast.png": lambda p: plot.plot_forecast(
            post, prediction, history=max(60, 4 * len(prediction.index))
        ).figure.savefig(p, dpi=110, bbox_inches="tight"),
        "components.png": lambda p: plot.plot_components(
            bsts.decompose(post), observed=data[target]
        ).savefig(p, dpi=110, bbox_inches="tight"),
    }
    for name, write in files.items():
        write(out / name)

    import pandas as pd

    with pd.option_context(
        "display.width", 120, "display.max_columns", None, "display.float_format", "{:.4g}".format
    ):
        print(summary)
    print(f"wrote {', '.join(files)} to {out.resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bsts` console script."""
    args = _parser().parse_args(argv)
    for name in ("chains", "warmup", "samples") + (("horizon",) if args.command == "fit" else ()):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "warmup" else 1):
            print(f"bsts: error: --{name} must be positive, got {value}", file=sys.stderr)
            return 2
    # Chains side by side on a multi-core CPU: JAX must see one device per chain, which
    # only takes effect if nothing has started JAX's backend yet (as in a fresh process).
    import jax
    import numpyro

    numpyro.set_host_device_count(min(args.chains, os.cpu_count() or 1))
    jax.config.update("jax_enable_x64", True)
    import matplotlib

    matplotlib.use("Agg")
    try:
        return _run(args)
    except (CommandError, ValueError) as error:
        print(f"bsts: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
