"""The honest zero-shot protocol for one head on one split and seed.

1. Hyper-parameters are chosen on the split's *validation* zero-shot problem: the head is fitted on
   training samples of the validation-seen classes and ranked by ZSL top-1 on training samples of
   the validation-unseen classes (all of them seen classes of the real split). No test sample and
   no unseen class is involved.
2. The head is refitted with the chosen parameters on all seen classes (training samples only).
3. The test split is touched once: ZSL (unseen test samples among unseen classes) and GZSL (all
   test samples among all classes): plain arg-max, calibrated stacking with the seen-class penalty
   gamma chosen on the validation problem (held-out training samples of validation-seen classes plus
   training samples of validation-unseen classes), and the threshold-free AUSUC.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from zsar import progress
from zsar.class_lists.splits import ZeroShotSplit
from zsar.errors import ZsarError
from zsar.evaluate.batched_fits import BatchedFits, FitRequest
from zsar.evaluate.domain_gate import fit_domain_gate
from zsar.evaluate.epoch_choice import selection_scores
from zsar.evaluate.gzsl import (
    ausuc,
    best_gamma,
    calibrated_predictions,
    calibrated_stacking_metrics,
    curve_points,
    seen_unseen_curve,
)
from zsar.evaluate.metrics import confusion_matrix, gzsl_metrics, per_class_accuracy, zsl_metrics
from zsar.evaluate.seen_scores import seen_class_logits
from zsar.features.prototypes import ClassPrototypes
from zsar.features.reader import FeatureSet
from zsar.heads import Head, head_class
from zsar.heads.base import build_config
from zsar.heads.batched_runs import MemberFit
from zsar.holdout import stratified_holdout
from zsar.scoring import softmax

CALIBRATION_HOLDOUT = 0.2  # of the validation-seen training samples, held out to choose gamma


@dataclass
class RunResult:
    head: str
    split: str
    seed: int
    params: dict
    selection: list  # [{"params": ..., "validation_top1": ...}]
    zsl: dict
    gzsl: dict | None
    zsl_per_class: dict  # class id -> accuracy
    zsl_confusion: np.ndarray
    predictions: pd.DataFrame
    fit_info: dict = field(default_factory=dict)
    fitted: Head | None = None
    text_variant: str | None = None

    def summary(self) -> dict:
        return {"head": self.head, "split": self.split, "seed": self.seed, "params": self.params,
                "text_variant": self.text_variant, "selection": self.selection, "zsl": self.zsl, "gzsl": self.gzsl,
                "fit": self.fit_info}


def _require_samples(data: FeatureSet, classes, what: str, split: ZeroShotSplit) -> None:
    present = set(np.unique(data.labels).tolist())
    missing = [int(c) for c in classes if int(c) not in present]
    if missing:
        raise ZsarError(f"split {split.name!r}: {what} classes {missing} have no samples")


def _grid_combos(grid: dict) -> list[dict]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())] if grid else [{}]


@dataclass(frozen=True)
class ProtocolOptions:
    """How a run is evaluated (an experiment's [evaluate] settings): the same for every head, split and seed."""

    gzsl: bool = True  # also the generalised problem: every test sample among all classes
    top_k: int = 5  # top-k accuracy and the classes listed per prediction
    backend: str = "auto"  # search backend of prototype scoring
    device: str = "cpu"  # scoring device, and the training device of torch heads whose params name none
    # the papers' test-set model selection, for comparison only (the report labels it); by default parameters are
    # chosen on validation
    select_on_test: bool = False
    # how the training length is read off the validation curve (zsar/evaluate/epoch_choice.py); the papers' mode
    # always takes the best test epoch
    epoch_rule: str = "smoothed"
    # also the last-epoch and test-selected top-1 in the ZSL result (`selection_columns`; after the honest result)
    leaderboard_columns: bool = False


@dataclass(frozen=True)
class HeadRun:
    """One head on one split and seed: its class (resolved once), the settings every fit starts from (with the
    training device) and the grid searched over them, and the protocol's options."""

    cls: type[Head]
    base_params: dict
    grid: dict
    split: ZeroShotSplit
    seed: int
    options: ProtocolOptions
    fits: BatchedFits | None = None  # fits trained ahead with other runs' (batched_protocol.py); None: none

    def build(self, params: dict) -> Head:
        return self.cls(build_config(self.cls.Config, params, f"head {self.cls.name!r}"))

    def combos(self) -> list[dict]:
        """Every setting of the grid (one empty setting without a grid)."""
        return _grid_combos(self.grid)

    def request(self, params: dict, data: FeatureSet, prototypes: ClassPrototypes, monitored: bool = False
                ) -> FitRequest:
        """The fit of this run's head with `params` on `data` and `prototypes` (`monitored`: a snapshot per epoch)."""
        return FitRequest(self.cls.name, params, data, prototypes, self.seed, monitored)

    def fit(self, request: FitRequest) -> MemberFit:
        """The fitted head with its fit info (and snapshots): trained ahead with other runs, else fitted here."""
        ahead = None if self.fits is None else self.fits.take(request)
        return ahead if ahead is not None else request.fit_alone(self.build(request.params))

    def score(self, head: Head, features: np.ndarray, prototypes: ClassPrototypes) -> np.ndarray:
        return head.score(features, prototypes, self.options.backend, self.options.device)

    def score_snapshots(self, heads: list[Head], features: np.ndarray, prototypes: ClassPrototypes) -> list:
        return self.cls.score_snapshots(heads, features, prototypes, self.options.backend, self.options.device)


@dataclass(frozen=True)
class RankingProblem:
    """Fit on `fit` (classes `fit_classes`), score `queries` among `query_classes`; `metric` names the score."""

    fit: FeatureSet
    fit_classes: list[int]
    queries: FeatureSet
    query_classes: list[int]
    metric: str


def problem_requests(run: HeadRun, combos: list[dict], problem: RankingProblem, prototypes: ClassPrototypes
                     ) -> list[FitRequest]:
    """The fits that rank `combos` on `problem` (watching every epoch when the head chooses its epochs)."""
    fit_protos = prototypes.subset(problem.fit_classes)
    return [run.request({**run.base_params, **combo}, problem.fit, fit_protos, monitored=run.cls.epoch_selection)
            for combo in combos]


def ranks_settings(run: HeadRun, always_rank: bool) -> bool:
    """Whether settings are scored on validation: a grid to search, epochs to choose, or `always_rank` (a score to
    compare text variants by)."""
    return _grid_combos(run.grid) != [{}] or run.cls.epoch_selection or always_rank


def validation_problem(run: HeadRun, train: FeatureSet) -> RankingProblem:
    """Fit on the training samples of the validation-seen classes, rank by the validation-unseen ones."""
    split = run.split
    val = split.validation_split()
    queries = train.with_classes(val.unseen)
    _require_samples(queries, val.unseen, "validation-unseen (training samples of)", split)
    return RankingProblem(train.with_classes(split.validation_seen), split.validation_seen, queries, val.unseen,
                          "validation_top1")


def rank_parameters(run: HeadRun, combos: list[dict], problem: RankingProblem, prototypes: ClassPrototypes,
                    epoch_rule: str) -> tuple[dict, list]:
    """Fit with every combination and score the problem's queries; the best parameters by ZSL top-1 (first of
    equals) and the table of all tried, under the key `problem.metric`. Heads with `epoch_selection` are scored
    after every epoch and the epoch count is part of the choice, ranked by `epoch_rule`
    (zsar/evaluate/epoch_choice.py); each row's `selection_score` is what it was ranked by."""
    query_protos = prototypes.subset(problem.query_classes)
    metric = problem.metric

    def top1(scores: np.ndarray) -> float:
        return zsl_metrics(scores, problem.queries.labels, problem.query_classes)["top1"]

    table, candidates = [], []
    for combo, request in zip(combos, problem_requests(run, combos, problem, prototypes)):
        fitted = run.fit(request)
        if run.cls.epoch_selection:
            curve = [top1(scores) for scores in run.score_snapshots(fitted.snapshots, problem.queries.embeddings,
                                                                     query_protos)]
            for epoch, (raw, ranked) in enumerate(zip(curve, selection_scores(curve, epoch_rule)), start=1):
                candidates.append({**combo, run.cls.epoch_parameter: fitted.head.snapshot_setting(epoch)})
                table.append({"params": candidates[-1], metric: raw, "selection_score": float(ranked)})
        else:
            candidates.append(combo)
            score = top1(run.score(fitted.head, problem.queries.embeddings, query_protos))
            table.append({"params": combo, metric: score, "selection_score": score})
    best = max(range(len(table)), key=lambda i: (table[i]["selection_score"], -i))
    return {**run.base_params, **candidates[best]}, table


def select_parameters(run: HeadRun, train: FeatureSet, prototypes: ClassPrototypes,
                      always_rank: bool = False) -> tuple[dict, list]:
    """Best parameters (and epoch count, for heads that report epochs, by the options' epoch rule) by validation ZSL
    top-1. A single setting is not scored unless `always_rank` (when the score is compared with other text
    variants)."""
    base_params, epoch_rule = run.base_params, run.options.epoch_rule
    combos = _grid_combos(run.grid)
    if not ranks_settings(run, always_rank):
        return dict(base_params), []
    if not run.split.validation_unseen:
        return dict(base_params), [{"note": "no validation classes; defaults used"}]
    problem = validation_problem(run, train)
    progress.stage(f"choosing among {len(combos)} setting(s) on validation")
    params, table = rank_parameters(run, combos, problem, prototypes, epoch_rule)
    picked = {k: v for k, v in params.items() if k not in base_params or base_params[k] != v}
    best = max(row["selection_score"] for row in table)
    progress.chosen(f"{', '.join(f'{k}={v}' for k, v in picked.items()) or 'defaults'} "
                    f"(validation top-1 {best:.1f}{', smoothed' if epoch_rule == 'smoothed' else ''})")
    return params, table


def choose_text_variant(run: HeadRun, train: FeatureSet, test: FeatureSet,
                        texts: Mapping[str, ClassPrototypes]) -> tuple[str, dict, list]:
    """(text variant, parameters, table): with several variants, every one is ranked with the head's grid on the
    validation problem (on test only in the flagged papers' mode) and the best variant with its best setting wins
    (the first of equals, in the order given). The table's rows name their variant."""
    several, ranked, on_test = len(texts) > 1, [], run.options.select_on_test
    for variant, prototypes in texts.items():
        if several:
            progress.stage(f"text variant {variant!r}")
        if on_test:
            params, table = rank_on_test(run, train, test, prototypes)
        else:
            params, table = select_parameters(run, train, prototypes, always_rank=several)
        ranked.append((variant, params, [{**row, "text_variant": variant} for row in table] if several else table))
    if not several:
        return ranked[0]
    metric = "test_top1" if on_test else "validation_top1"
    scores = [max((row["selection_score"] for row in table if metric in row), default=None) for _, _, table in ranked]
    if any(score is None for score in scores):  # no validation classes: nothing to choose with
        variant, params, table = ranked[0]
        return variant, params, table
    best = max(range(len(ranked)), key=lambda i: (scores[i], -i))
    progress.chosen(f"text variant {ranked[best][0]!r} ({metric.replace('_top1', '')} top-1 {scores[best]:.1f})")
    return ranked[best][0], ranked[best][1], [row for _, _, table in ranked for row in table]


def unseen_class_scores(run: HeadRun, head: Head, data: FeatureSet, all_scores: np.ndarray, all_classes: list[int],
                        unseen: list[int], prototypes: ClassPrototypes) -> np.ndarray:
    """The gate's unseen-class scores: the unseen columns of the all-class scores when a class's score does not
    depend on the others scored with it, else the head scored against the unseen classes alone (SA-DVAE)."""
    if head.separable_scores:
        return all_scores[:, [all_classes.index(c) for c in unseen]]
    return run.score(head, data.embeddings, prototypes.subset(unseen))


def calibrate_gzsl(run: HeadRun, params: dict, train: FeatureSet, prototypes: ClassPrototypes) -> dict:
    """On the validation problem only (held-out training samples of validation-seen classes plus training
    samples of validation-unseen classes; no test data, no unseen class): the calibrated-stacking gamma
    with the best H, and the seen/unseen gate."""
    split, seed = run.split, run.seed
    if not split.validation_unseen:
        return {"gamma": 0.0, "gate": None, "note": "no validation classes; gamma = 0 and no gate"}
    val = split.validation_split()
    fit_set, queries = calibration_sets(run, train)
    head = run.fit(calibration_request(run, params, fit_set, prototypes)).head
    classes = sorted(split.validation_seen + val.unseen)
    scores = run.score(head, queries.embeddings, prototypes.subset(classes))
    curve = seen_unseen_curve(scores, queries.labels, classes, split.validation_seen, val.unseen)
    unseen_scores = unseen_class_scores(run, head, queries, scores, classes, val.unseen, prototypes)
    seen_logits, source = seen_class_logits(fit_set, queries, split.validation_seen, seed)
    gate = fit_domain_gate(unseen_scores, seen_logits, queries.labels, val.unseen, split.validation_seen, seed)
    return {"gamma": best_gamma(curve), "gate": gate, "validation_h": float(curve["h"].max()),
            "validation_ausuc": ausuc(curve), "gate_selection": gate.selection, "seen_scores": source}


def calibration_sets(run: HeadRun, train: FeatureSet) -> tuple[FeatureSet, FeatureSet]:
    """The GZSL calibration's fitting set (training samples of the validation-seen classes less a stratified
    hold-out, drawn with the run's seed) and its queries (the hold-out, then the validation-unseen classes' samples)."""
    split = run.split
    seen_part = train.with_classes(split.validation_seen)
    fit_pos, held_pos = stratified_holdout(seen_part.labels, CALIBRATION_HOLDOUT, run.seed)
    unseen = train.with_classes(split.validation_split().unseen)
    return seen_part.subset(fit_pos), FeatureSet.concat([seen_part.subset(held_pos), unseen])


def calibration_request(run: HeadRun, params: dict, fit_set: FeatureSet, prototypes: ClassPrototypes) -> FitRequest:
    """The GZSL calibration's fit: the chosen settings on `fit_set` (from `calibration_sets`)."""
    return run.request(params, fit_set, prototypes.subset(run.split.validation_seen))


def problem_on_test(run: HeadRun, train: FeatureSet, test: FeatureSet) -> RankingProblem:
    """Fit on the seen classes' training samples, rank by the unseen classes' test samples (the papers' choice)."""
    split = run.split
    return RankingProblem(train.with_classes(split.seen), split.seen, test.with_classes(split.unseen), split.unseen,
                          "test_top1")


def rank_on_test(run: HeadRun, train: FeatureSet, test: FeatureSet, prototypes: ClassPrototypes) -> tuple[dict, list]:
    """Paper-comparison mode only: the parameters (and epoch) with the best *test* ZSL top-1 (what several
    released codes report). Not an honest estimate; reports label runs made this way."""
    return rank_parameters(run, run.combos(), problem_on_test(run, train, test), prototypes, epoch_rule="best")


def selection_columns(run: HeadRun, params: dict, train: FeatureSet, test: FeatureSet,
                      prototypes: ClassPrototypes) -> dict:
    """The leaderboard's two other columns for one run, next to the validation-selected top-1: `top1_last`, the
    settings chosen on validation trained for the whole schedule (no choice of its length), and
    `top1_test_selected`, every grid setting and training length ranked on the test split (the papers' protocol).
    One pass of test-ranked fits on the seen classes gives both (the fits the protocol's final fit repeats)."""
    table = rank_on_test(run, train, test, prototypes)[1]
    chosen = {k: v for k, v in params.items() if k in run.grid}
    runs = [row for row in table if {k: v for k, v in row["params"].items() if k in run.grid} == chosen]
    # a head without epochs has one row per setting; with epochs the chosen setting's last snapshot
    return {"top1_test_selected": max(row["test_top1"] for row in table), "top1_last": runs[-1]["test_top1"]}


def predictions_table(task: str, data: FeatureSet, scores: np.ndarray, class_ids, class_names, k: int) -> pd.DataFrame:
    """sample_id, true class, predicted class, confidence and the top-k classes with scores."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    probs = softmax(scores)
    ids = np.asarray(class_ids)
    name_of = dict(zip(ids.tolist(), class_names))
    table = {
        "task": task, "sample_id": data.sample_ids,
        "true_class": [name_of.get(int(c), str(int(c))) for c in data.labels],
        "predicted_class": [name_of[int(c)] for c in ids[order[:, 0]]],
        "confidence": np.take_along_axis(probs, order[:, :1], axis=1)[:, 0].round(6),
        "true_label": data.labels, "predicted_label": ids[order[:, 0]],
    }
    for j in range(k):
        table[f"top{j + 1}_class"] = [name_of[int(c)] for c in ids[order[:, j]]]
        table[f"top{j + 1}_score"] = np.take_along_axis(scores, order[:, j : j + 1], axis=1)[:, 0].round(6)
    return pd.DataFrame(table)


def _with_device(cls: type[Head], params: dict, device: str) -> dict:
    takes_device = "device" in {f.name for f in fields(cls.Config)}
    return {**params, "device": device} if takes_device and "device" not in params else dict(params)


def with_training_device(head_name: str, params: dict, device: str) -> dict:
    """Heads that train with torch train on the evaluation's device unless their own params name one."""
    return _with_device(head_class(head_name), params, device)


@dataclass(frozen=True)
class RunData:
    """What a run reads: training samples (every fit), test samples (touched once), the validation problem's
    samples (selection and GZSL calibration; the training samples unless an encoder that never saw the
    validation-unseen classes gave others) and the text variants by name."""

    train: FeatureSet
    test: FeatureSet
    validation: FeatureSet
    texts: dict[str, ClassPrototypes]

    @classmethod
    def of(cls, train: FeatureSet, test: FeatureSet, prototypes: ClassPrototypes | Mapping[str, ClassPrototypes],
           validation: FeatureSet | None = None) -> RunData:
        texts = {prototypes.variant: prototypes} if isinstance(prototypes, ClassPrototypes) else dict(prototypes)
        return cls(train, test, train if validation is None else validation, texts)


def protocol_run(head_name: str, base_params: dict, grid: dict | None, split: ZeroShotSplit, seed: int,
                 options: ProtocolOptions, fits: BatchedFits | None = None) -> HeadRun:
    """The run of `head_name` on `split` with `seed`: its head class, settings with the training device, and grid."""
    cls = head_class(head_name)
    return HeadRun(cls, _with_device(cls, base_params, options.device), cls.search_space if grid is None else grid,
                   split, seed, options, fits)


def check_samples(run: HeadRun, data: RunData) -> None:
    """Every seen class has training samples (and, choosing on test, every unseen class test samples)."""
    split = run.split
    _require_samples(data.train.with_classes(split.seen), split.seen, "seen (training)", split)
    if run.options.select_on_test:
        _require_samples(data.test.with_classes(split.unseen), split.unseen, "unseen test", split)


def choose_settings(run: HeadRun, data: RunData) -> tuple[str, dict, list]:
    """(text variant, parameters, selection table), chosen on validation (on test in the papers' mode)."""
    check_samples(run, data)
    on_test = run.options.select_on_test
    return choose_text_variant(run, data.train if on_test else data.validation, data.test, data.texts)


def run_protocol(
    head_name: str, base_params: dict, grid: dict | None, train: FeatureSet, test: FeatureSet,
    split: ZeroShotSplit, prototypes: ClassPrototypes | Mapping[str, ClassPrototypes], seed: int,
    options: ProtocolOptions | None = None, validation: FeatureSet | None = None,
) -> RunResult:
    """One head, split and seed, evaluated as `options` say (default `ProtocolOptions()`).
    `grid`: the settings searched on validation (None: the head's `search_space`).
    `prototypes`: one text variant, or several by name: then the variant is chosen like a parameter.
    `validation`: features for the validation problem from an encoder that never saw the validation-unseen
    classes (as the published releases ship them); by default the training features serve.
    `zsar.evaluate.batched_protocol.run_protocol_group` gives the same results for several splits and seeds with
    the fits of the heads that train batched trained together."""
    run = protocol_run(head_name, base_params, grid, split, seed, options or ProtocolOptions())
    data = RunData.of(train, test, prototypes, validation)
    return finish_run(run, data, choose_settings(run, data))


def final_request(run: HeadRun, data: RunData, params: dict, prototypes: ClassPrototypes) -> FitRequest:
    """The fit with the chosen settings on every seen class's training samples."""
    return run.request(params, data.train.with_classes(run.split.seen), prototypes.subset(run.split.seen))


def finish_run(run: HeadRun, data: RunData, choice: tuple[str, dict, list]) -> RunResult:
    """The rest of a run once its settings are chosen: the final fit, the test split touched once (ZSL, the
    leaderboard's other columns, GZSL)."""
    (variant, params, selection), split, options = choice, run.split, run.options
    prototypes = data.texts[variant]
    progress.stage("fitting on the seen classes")
    final = run.fit(final_request(run, data, params, prototypes))
    head = final.head
    progress.stage("scoring the test split")
    # the test split, touched once
    zsl_test = data.test.with_classes(split.unseen)
    _require_samples(zsl_test, split.unseen, "unseen test", split)
    unseen_protos = prototypes.subset(split.unseen)
    scores = run.score(head, zsl_test.embeddings, unseen_protos)
    zsl = zsl_metrics(scores, zsl_test.labels, split.unseen, options.top_k)
    if options.leaderboard_columns and not options.select_on_test:
        zsl.update(selection_columns(run, params, data.train, data.test, prototypes))
    predicted = np.asarray(split.unseen)[scores.argmax(axis=1)]
    tables = [predictions_table("zsl", zsl_test, scores, split.unseen, unseen_protos.class_names, options.top_k)]
    gzsl_result = None
    if options.gzsl:
        seen_train = data.train.with_classes(split.seen)
        gzsl_result, gzsl_table = _gzsl_on_test(run, head, params, data.test, seen_train, data.validation, prototypes)
        tables.append(gzsl_table)
    return RunResult(
        head=run.cls.name, split=split.name, seed=run.seed, params=params, selection=selection, zsl=zsl,
        gzsl=gzsl_result, zsl_per_class=per_class_accuracy(predicted, zsl_test.labels, split.unseen),
        zsl_confusion=confusion_matrix(zsl_test.labels, predicted, split.unseen),
        predictions=pd.concat(tables, ignore_index=True), fit_info=final.info, fitted=head, text_variant=variant,
    )


def _gzsl_on_test(run: HeadRun, head: Head, params: dict, test: FeatureSet, seen_train: FeatureSet,
                  validation: FeatureSet, prototypes: ClassPrototypes) -> tuple[dict, pd.DataFrame]:
    """The fitted `head` on every test sample among all classes: plain arg-max, calibrated stacking and the gate
    (both calibrated on the validation problem), AUSUC; and the GZSL predictions table."""
    split = run.split
    all_classes = sorted(split.seen + split.unseen)
    gzsl_test = test.with_classes(all_classes)
    all_protos = prototypes.subset(all_classes)
    g_scores = run.score(head, gzsl_test.embeddings, all_protos)
    g_pred = np.asarray(all_classes)[g_scores.argmax(axis=1)]
    result = gzsl_metrics(g_pred, gzsl_test.labels, split.seen, split.unseen)
    table = predictions_table("gzsl", gzsl_test, g_scores, all_classes, all_protos.class_names, run.options.top_k)
    name_of = dict(zip(all_classes, all_protos.class_names, strict=True))
    progress.stage("GZSL: calibrating on validation")
    calibration = calibrate_gzsl(run, params, validation, prototypes)
    stacked = calibrated_stacking_metrics(g_scores, gzsl_test.labels, all_classes, split.seen, split.unseen,
                                          calibration["gamma"])
    result.update({f"cs_{k}": v for k, v in stacked.items() if k in ("seen", "unseen", "h", "gamma")})
    _add_predictions(table, "cs", calibrated_predictions(g_scores, all_classes, split.seen, calibration["gamma"]),
                     name_of)
    gate = calibration.pop("gate")
    result["cs_selection"] = calibration
    if gate is not None:
        unseen_scores = unseen_class_scores(run, head, gzsl_test, g_scores, all_classes, split.unseen, prototypes)
        seen_logits, source = seen_class_logits(seen_train, gzsl_test, split.seen, run.seed)
        gate_predicted = gate.predict(unseen_scores, split.unseen, seen_logits, split.seen)
        gated = gzsl_metrics(gate_predicted, gzsl_test.labels, split.seen, split.unseen)
        _add_predictions(table, "gate", gate_predicted, name_of)
        result.update({f"gate_{k}": gated[k] for k in ("seen", "unseen", "h")})
        result["gate_seen_scores"] = source
    curve = seen_unseen_curve(g_scores, gzsl_test.labels, all_classes, split.seen, split.unseen)
    result["ausuc"] = ausuc(curve)
    result["curve"] = curve_points(curve)
    return result, table


def _add_predictions(table: pd.DataFrame, method: str, predicted: np.ndarray, name_of: dict) -> None:
    """A GZSL method's predicted label and class name beside the plain prediction."""
    table[f"{method}_predicted_label"] = np.asarray(predicted)
    table[f"{method}_predicted_class"] = [name_of[int(c)] for c in predicted]
