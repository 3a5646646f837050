r"""The generative half of `Classifier`: a structural model per class, scored exactly.

A class $c$ with training members $i \in c$ describes a new series $y$ by

$$
p(y \mid c) = \frac{1}{n_c} \sum_{i \in c} p\big(y \mid \theta_i, \mu_i\big), \qquad
y_t = \beta\,\mu_i(t) + \text{(the structural model's signal)}_t + \varepsilon_t,
$$

the exact Kalman marginal likelihood of $y$ (`bsts.scoring`) under hyperparameters
$\theta_i$ with a *template* $\mu_i(t)$ as a regression offset on time since the start:

- `template="members"`: $\mu_i$ is member $i$'s own standardised series, so that a class
  is its members' shapes plus the structural model of the deviations from them (a kernel
  density over series whose kernel is a structural model);
- `"class"`: $\mu_i = \mu_c$, the class's mean shape, for every member;
- None: no offset; only the dynamics (scales, AR coefficients) tell the classes apart.

The hyperparameters are pooled in one of two ways (`pooling`):

- `"members"`: each member is fitted on its own, $\theta_i$, and the class is the mixture
  of its members' fits: the empirical-Bayes form of a hierarchical model whose population
  distribution of hyperparameters is estimated by the members' modes (or draws);
- `"shared"`: one $\theta_c$ for the class, the mode of the pooled posterior over all its
  members (`bsts.pooled`), sharper when each series alone says little (short series).

A member's fit must describe how a series deviates from its template, so a member is
fitted against the template a *new* series would meet, without itself in it: with member
templates, its nearest other class member (narrow kernels) or its class's mean shape (wide
kernels), as a kernel density estimate must choose its bandwidth.

Every choice left open (the template, the pooling, and the member fit with member
templates: `"auto"`) is made by
out-of-sample log loss on the training series: leave-one-out for member fits (a series is
scored without its own fit and without its values in any template), 5-fold
cross-validation for shared fits (refitted without the fold). The same out-of-sample
scores fit the temperature $\tau \ge 1$ of $p(c \mid y) \propto \pi_c\, p(y \mid c)^{1/\tau}$:
a likelihood over $T$ correlated points of a misspecified model is overconfident, and
$\tau$ calibrates it ($\tau = 1$ is the model's own posterior).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from jax.tree_util import tree_map
from scipy import optimize, special

from bsts.analysis._series_sets import TEMPLATE, Templates, grid_times, with_template
from bsts.components import Regression
from bsts.many import fit_prepared
from bsts.model import Model
from bsts.pooled import pooled_modes
from bsts.scoring import log_likelihoods

__all__ = [
    "POOLINGS",
    "TEMPLATES",
    "ClassModels",
    "class_probabilities",
    "fit_class_models",
    "fitted_temperature",
    "log_loss",
]

POOLINGS = ("auto", "members", "shared")
TEMPLATES = ("auto", "members", "class", None)
# Owners of parameter sets: a training member's index, or one of these.
_PADDING = -1
_SHARED = -2
_FOLDS = 5


@dataclass
class ClassModels:
    r"""Fitted class models, ready to score new series.

    Attributes:
        structure: the model each set is evaluated with (the base model plus the template
            regression when there is a template).
        template: "members", "class" or None.
        templates: the training members' shapes (None without a template).
        stacks: per class, site-keyed parameter sets with a common leading axis.
        owners: per class, the training member owning each set (`_PADDING`: filler;
            `_SHARED`: a class-wide set).
        pooling: "members" or "shared".
        member_fit: what members were fitted against: "nearest" or "class".
        temperature: the calibration temperature $\tau$.
        template_of: per training member, the member whose values its fit used as the
            template ("nearest"), or None.
        roles: per class and set, 0 for a member's fit, 1 for its alternate fit (against
            its second nearest member), or None when there are no alternates. Scoring a
            member $j$ out of sample uses the alternate of every member fitted against
            $j$ and the fit of every other member, so that no set depends on $y_j$;
            scoring a new series uses the fits.
    """

    structure: Model
    template: str | None
    templates: Templates | None
    stacks: list[dict]
    owners: list[np.ndarray]
    pooling: str
    member_fit: str
    temperature: float = 1.0
    template_of: np.ndarray | None = None
    roles: list[np.ndarray] | None = None

    def scores(self, series, data, unit, exclude=None, codes=None) -> np.ndarray:
        r"""$\log p(\tilde y_j \mid c)$ per series and class, `(n, classes)`.

        Args:
            series: the series (pandas, for their times).
            data: their prepared data.
            unit: the shared time unit.
            exclude: per series, a training member to leave out of its scoring (its own
                index when scoring the training set), or None.
            codes: per series, its training class (with `exclude`), whose mean shape then
                leaves the excluded member out.
        """
        jobs, places = [], []
        for j, (s, d) in enumerate(zip(series, data, strict=True)):
            times = grid_times(s, unit)
            left_out = None if exclude is None else exclude[j]
            for c in range(len(self.stacks)):
                jobs.append(self._job(s, d, times, c, left_out, codes))
                places.append((j, c, left_out))
        values = log_likelihoods(self.structure, jobs)
        out = np.empty((len(series), len(self.stacks)))
        for (j, c, left_out), ll in zip(places, values, strict=True):
            owners = self.owners[c]
            usable = owners != _PADDING
            if left_out is not None:
                usable &= owners != left_out
            if self.roles is not None:
                uses = self.template_of[np.maximum(owners, 0)] == left_out
                usable &= np.where(uses, self.roles[c] == 1, self.roles[c] == 0)
            kept = np.where(np.isfinite(ll[usable]), ll[usable], -np.inf)
            out[j, c] = special.logsumexp(kept) - math.log(kept.size)
        return out

    def _job(self, series, data, times, label: int, left_out, codes):
        if self.template is None:
            return (data, self.stacks[label])
        if self.template == "class":
            own = left_out is not None and codes is not None and codes[left_out] == label
            template = self.templates.at(label, times, left_out if own else None)
            return (with_template(data, template), self.stacks[label])
        owners = self.owners[label]
        members = np.where(owners >= 0, owners, owners[owners >= 0][0])
        rows = {m: with_template(data, self.templates.member_at(m, times)) for m in set(members)}
        covariates = np.stack([rows[m].covariates[TEMPLATE] for m in members])
        return (data, self.stacks[label], {TEMPLATE: covariates})


def fit_class_models(
    base: Model,
    series: list,
    data: list,
    codes: np.ndarray,
    unit,
    log_prior: np.ndarray,
    *,
    template: str | None,
    pooling: str,
    inference: str,
    options: dict,
    draws_per_series: int,
    seed: int,
) -> tuple[ClassModels, np.ndarray]:
    """Fit the class models; choose what is left open by out-of-sample log loss.

    Returns:
        The chosen `ClassModels` and the training series' out-of-sample class scores
        under them, `(n, classes)`.
    """
    num_classes = int(codes.max()) + 1
    poolings = ("members", "shared") if pooling == "auto" else (pooling,)
    if inference != "map":
        poolings = ("members",)
    best = None
    for shape in TEMPLATES[1:] if template == "auto" else (template,):
        structure = base if shape is None else base + Regression([TEMPLATE], name=TEMPLATE)
        templates = None
        if shape is not None:
            templates = Templates(
                [grid_times(s, unit) for s in series], [d.y for d in data], codes, num_classes
            )
        context = _Context(structure, templates, shape, series, data, codes, unit, num_classes)
        for pooled in poolings:
            for member_fit in ("nearest", "class") if shape == "members" else ("class",):
                if pooled == "members":
                    models, scores = context.members(
                        member_fit, inference, options, draws_per_series, seed
                    )
                else:
                    models, scores = context.shared(member_fit, options, seed)
                models.temperature = fitted_temperature(scores, codes, log_prior)
                loss = log_loss(scores, codes, log_prior, models.temperature)
                if best is None or loss < best[0]:
                    best = (loss, models, scores)
    return best[1], best[2]


@dataclass
class _Context:
    structure: Model
    templates: Templates | None
    template: str | None
    series: list
    data: list
    codes: np.ndarray
    unit: object
    num_classes: int

    def training_data(self, i: int, member_fit: str):
        """Member i's data with the template it is fitted against (itself left out).

        "nearest": its nearest other class member; "second": the next nearest; "class":
        its class's mean shape.
        """
        if self.template is None:
            return self.data[i]
        times = grid_times(self.series[i], self.unit)
        if member_fit in ("nearest", "second"):
            neighbour = self.templates.nearest(i)
            if member_fit == "second":
                neighbour = self.templates.nearest(i, skip=neighbour)
            values = self.templates.member_at(neighbour, times)
        else:
            values = self.templates.at(self.codes[i], times, leave_out=i)
        return with_template(self.data[i], values)

    def models(self, stacks, owners, pooling: str, member_fit: str, roles=None) -> ClassModels:
        template_of = None
        if roles is not None:
            template_of = np.array([self.templates.nearest(i) for i in range(len(self.series))])
        return ClassModels(
            self.structure,
            self.template,
            self.templates,
            stacks,
            owners,
            pooling,
            member_fit,
            template_of=template_of,
            roles=roles,
        )

    def out_of_sample(self, models: ClassModels, which=None) -> np.ndarray:
        which = np.arange(len(self.series)) if which is None else np.asarray(which)
        return models.scores(
            [self.series[j] for j in which],
            [self.data[j] for j in which],
            self.unit,
            exclude=list(which),
            codes=self.codes,
        )

    def members(self, member_fit, inference, options, draws_per_series, seed):
        """Each member fitted alone; exact leave-one-out scores.

        A member fitted against its nearest member $j$ depends on $y_j$, so it is also
        fitted against its second nearest (an alternate), which stands in for it when $j$
        is scored out of sample.
        """
        variants = ("nearest", "second") if member_fit == "nearest" else (member_fit,)
        n = len(self.series)
        draws = []
        for variant in variants:
            jobs = {i: self.training_data(i, variant) for i in range(n)}
            fits = fit_prepared(self.structure, jobs, inference, options, seed=seed)
            draws += [_thinned(fits[i].flat_draws(), inference, draws_per_series) for i in jobs]
        stacks, owners = _member_stacks(draws[:n], self.codes, self.num_classes)
        models = self.models(stacks, owners, "members", member_fit)
        if len(variants) == 1:
            return models, self.out_of_sample(models)
        codes = np.concatenate([self.codes, self.codes])
        both, both_owners = _member_stacks(draws, codes, self.num_classes)
        roles = [np.where(o >= n, 1, 0) for o in both_owners]
        owners_both = [np.where(o >= n, o - n, o) for o in both_owners]
        validation = self.models(both, owners_both, "members", member_fit, roles=roles)
        return models, self.out_of_sample(validation)

    def shared(self, member_fit, options, seed):
        """One pooled fit per class; scores by 5-fold cross-validation."""
        folds = _folds(self.codes, seed)
        scores = np.empty((len(self.series), self.num_classes))
        for fold in range(folds.max() + 1):
            kept = folds != fold
            models = self._pooled(member_fit, kept, options, seed)
            held = np.flatnonzero(~kept)
            scores[held] = self.out_of_sample(models, held)
        everything = np.ones(len(self.series), dtype=bool)
        return self._pooled(member_fit, everything, options, seed), scores

    def _pooled(self, member_fit, kept: np.ndarray, options, seed) -> ClassModels:
        groups = [
            [self.training_data(i, member_fit) for i in np.flatnonzero(kept & (self.codes == c))]
            for c in range(self.num_classes)
        ]
        # Every fold pads to the full classes, so that all share one compiled program.
        modes = pooled_modes(
            self.structure,
            groups,
            num_steps=options["num_steps"],
            seed=seed,
            size=int(np.bincount(self.codes).max()),
            length=max(d.num_timesteps for d in self.data),
        )
        if self.template != "members":
            return self.models(modes, [np.array([_SHARED])] * len(modes), "shared", member_fit)
        # The class's one set, with each member's shape as the template.
        per_class = [np.flatnonzero(self.codes == c) for c in range(self.num_classes)]
        size = max(m.size for m in per_class)
        stacks, owners = [], []
        for mode, members in zip(modes, per_class, strict=True):
            stacks.append(tree_map(lambda a: np.repeat(a, size, axis=0), mode))
            owners.append(np.concatenate([members, np.full(size - members.size, _PADDING)]))
        return self.models(stacks, owners, "shared", member_fit)


def _thinned(flat: dict, inference: str, draws: int) -> dict:
    if inference == "map":
        return flat
    total = next(iter(flat.values())).shape[0]
    chosen = np.linspace(0, total - 1, min(draws, total)).round().astype(int)
    return {k: np.asarray(v)[chosen] for k, v in flat.items()}


def _member_stacks(draws: list[dict], codes: np.ndarray, num_classes: int):
    """Each class's members' parameter sets stacked and padded to the largest class."""
    per_class = [np.flatnonzero(codes == c) for c in range(num_classes)]
    counts = [[next(iter(draws[i].values())).shape[0] for i in m] for m in per_class]
    size = max(sum(c) for c in counts)
    stacks, owners = [], []
    for members, count in zip(per_class, counts, strict=True):
        stacked = tree_map(lambda *a: np.concatenate(a), *[draws[i] for i in members])
        owner = np.repeat(members, count)
        fill = size - owner.size
        stacks.append(
            tree_map(lambda a, fill=fill: np.concatenate([a, np.repeat(a[:1], fill, 0)]), stacked)
        )
        owners.append(np.concatenate([owner, np.full(fill, _PADDING)]))
    return stacks, owners


def _folds(codes: np.ndarray, seed: int) -> np.ndarray:
    """Stratified fold of each series: each class's members shuffled and dealt in turn."""
    rng = np.random.default_rng(seed)
    folds = np.empty(codes.size, dtype=int)
    for c in np.unique(codes):
        members = rng.permutation(np.flatnonzero(codes == c))
        folds[members] = np.arange(members.size) % min(_FOLDS, members.size)
    return folds


def log_loss(scores, codes, log_prior, temperature: float) -> float:
    """Mean negative log probability of the true classes, over series with finite scores."""
    finite = np.isfinite(scores).all(axis=1)
    if not finite.any():
        return math.inf
    logits = log_prior + scores[finite] / temperature
    logits = logits - special.logsumexp(logits, axis=1, keepdims=True)
    return -float(np.mean(logits[np.arange(int(finite.sum())), codes[finite]]))


def fitted_temperature(scores: np.ndarray, codes: np.ndarray, log_prior: np.ndarray) -> float:
    """The temperature minimising the out-of-sample log loss of the class probabilities.

    At least 1: a temperature only tempers the model's own likelihood. Below 1 it would
    sharpen it, and on training series that the scores separate perfectly the log loss
    falls without end as the temperature goes to 0, which a new series then pays for.
    """
    if not np.isfinite(scores).all(axis=1).any():
        return 1.0
    result = optimize.minimize_scalar(
        lambda log_tau: log_loss(scores, codes, log_prior, math.exp(log_tau)),
        bounds=(0.0, 12.0),
        method="bounded",
    )
    return float(math.exp(result.x))


def class_probabilities(scores: np.ndarray, log_prior: np.ndarray, temperature: float):
    """Log class probabilities from class scores, `(n, classes)`."""
    logits = log_prior + scores / temperature
    return logits - special.logsumexp(logits, axis=1, keepdims=True)
