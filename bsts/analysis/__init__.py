"""Answers to the classic time-series questions, each a pandas table with a plot.

- `trend`: is there a trend? (level change over a window, its rate, the slope)
- `period_scan`, `compare_seasonal`: is there a periodicity, at what period?
- `anomalies`: which points did the model not expect?
- `change_points`: where did the level or the slope shift?
- `causal_impact`: what did an intervention change?
- `Classifier`: which kind of series is this?

See docs/analysis.md for a tutorial.
"""

from bsts.analysis.anomalies import anomalies, plot_anomalies
from bsts.analysis.causal import CausalImpact, causal_impact
from bsts.analysis.change_points import ChangePointTrend, change_points, plot_change_points
from bsts.analysis.classifier import Classifier
from bsts.analysis.periodicity import compare_seasonal, period_scan, plot_period_scan
from bsts.analysis.trend import plot_trend, trend

__all__ = [
    "CausalImpact",
    "ChangePointTrend",
    "Classifier",
    "anomalies",
    "causal_impact",
    "change_points",
    "compare_seasonal",
    "period_scan",
    "plot_anomalies",
    "plot_change_points",
    "plot_period_scan",
    "plot_trend",
    "trend",
]
