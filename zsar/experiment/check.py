"""Check a whole experiment config before any work (and before torch or the encoders are imported): heads and
their parameters and types, search grids, text variant, splits against the data's classes, paths, devices.
Every problem is collected, so one run of `zsar run --check` lists them all."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from zsar.class_lists.class_text import read_class_text
from zsar.class_lists.splits import builtin_split_names, load_split
from zsar.errors import ZsarError
from zsar.evaluate.epoch_choice import EPOCH_RULES
from zsar.experiment.config import ExperimentConfig
from zsar.extract.text import VARIANTS, ensemble_weights
from zsar.heads.base import build_config
from zsar.heads.configs import HEAD_CONFIGS
from zsar.scoring import BACKENDS

DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


@dataclass
class ConfigCheck:
    problems: list[str] = field(default_factory=list)
    num_classes: int | None = None
    splits: int = 0
    runs: int = 0  # heads x splits x seeds

    def add(self, problem: str) -> None:
        self.problems.append(problem)


def _check_head(spec, where: str, check: ConfigCheck, device: str = "cpu") -> None:
    """The head's params (and every searched value) build its config; heads that train with torch get
    `[evaluate] device` unless their params name one, as the protocol gives it (a GPU-only preset on a CPU fails
    here, before any work)."""
    if spec.name not in HEAD_CONFIGS:
        check.add(f"{where}: unknown head {spec.name!r}; known heads: {sorted(HEAD_CONFIGS)}")
        return
    config_cls = HEAD_CONFIGS[spec.name]
    known = {f.name for f in fields(config_cls)}
    params = {"device": device, **spec.params} if "device" in known and isinstance(spec.params, dict) \
        else spec.params
    try:
        build_config(config_cls, params, f"{where} ({spec.name}) params")
    except (ZsarError, TypeError) as exc:
        check.add(str(exc))
        return
    for key, values in (spec.search or {}).items():
        if key not in known:
            check.add(f"{where} ({spec.name}) search: unknown parameter {key!r}; known: {sorted(known)}")
        elif not isinstance(values, list) or not values:
            check.add(f"{where} ({spec.name}) search: {key} must be a non-empty list of values")
        else:
            for value in values:
                try:
                    build_config(config_cls, {**params, key: value}, f"{where} ({spec.name}) search {key}")
                except (ZsarError, TypeError) as exc:
                    check.add(str(exc))


def _check_paths(config: ExperimentConfig, check: ConfigCheck) -> None:
    named = {"[data] cache": config.data.cache, "[data] validation_cache": config.data.validation_cache,
             "[data] dataset": config.data.dataset, "[encoder] checkpoint": config.encoder.checkpoint,
             "[encoder] mm_config": config.encoder.mm_config, "[text] descriptions": config.text.descriptions,
             "[text] parts": config.text.parts, "[text] class_text": config.text.class_text,
             "[text] class_names": config.text.class_names,
             "[text] prototypes": config.text.prototypes}
    if config.text.model and ("/" in config.text.model or config.text.model.startswith(".")):
        named["[text] model"] = config.text.model
    for key, value in named.items():
        if value and not config.resolve(value).exists():
            check.add(f"{key}: {config.resolve(value)} does not exist")


def _check_text(config: ExperimentConfig, check: ConfigCheck) -> None:
    """The variants are ones zsar embeds (or, with [text] prototypes, ones the given file holds), the ensemble's
    weights are valid and a given class text file reads."""
    t = config.text
    variants = t.variants
    if not variants or not all(isinstance(v, str) for v in variants) or len(set(variants)) != len(variants):
        check.add(f"[text] variant = {t.variant!r}: give one variant or a list of different variants")
        return
    given = config.resolve(t.prototypes)
    if given is None:
        for variant in (v for v in variants if v not in VARIANTS):
            check.add(f"[text] variant = {variant!r}: choose from {VARIANTS}")
    elif given.exists():
        from zsar.features.prototypes import load_prototypes

        for variant in variants:
            try:
                load_prototypes(given, variant)
            except ZsarError as exc:
                check.add(f"[text] prototypes: {exc}")
    if "ensemble" in variants:
        try:
            ensemble_weights(t.ensemble)
        except ZsarError as exc:
            check.add(f"[text] ensemble: {exc.problem}")
    elif t.ensemble is not None:
        check.add("[text] ensemble is set but 'ensemble' is not among the variants; add it to `variant`")
    multi = [h.name for h in config.heads if (h.params or {}).get("text_views", "mean") != "mean"]
    if multi and "ensemble" not in variants and given is None:
        check.add(f"heads {multi} train on several texts per class (text_views), which needs [text] variant "
                  "'ensemble' (the other variants have one text vector per class)")
    path = config.resolve(t.class_text)
    if path is not None and path.exists():
        try:
            read_class_text(path)
        except ZsarError as exc:
            check.add(str(exc))


def _data_classes(config: ExperimentConfig, check: ConfigCheck) -> int | None:
    """The number of classes of the experiment's data, where it can be known without loading samples; the
    cache's sample splits are checked on the way."""
    if config.data.source == "synthetic":
        from zsar.datasets.synthetic import synthetic_class_names

        return len(synthetic_class_names())
    if config.data.source != "cache" or not config.data.cache or not config.resolve(config.data.cache).exists():
        return None
    from zsar.features.reader import FeatureCache

    try:
        cache = FeatureCache(config.resolve(config.data.cache), verify=False)
    except ZsarError as exc:
        check.add(str(exc))
        return None
    present = set(cache.metadata["split"].astype(str))
    for key in ("train_split", "test_split"):
        if getattr(config.data, key) not in present:
            check.add(f"[data] {key} = {getattr(config.data, key)!r}: the cache {cache.path} has splits "
                      f"{sorted(present)}")
    return len(cache.class_names)


def _check_splits(config: ExperimentConfig, check: ConfigCheck) -> int:
    count = 0
    known = set(builtin_split_names())
    for name in config.splits.names:
        resolved = config.resolve(name)
        spec = resolved if resolved is not None and resolved.exists() else name
        if spec == name and name not in known:
            check.add(f"[splits] {name!r} is neither a built-in split ({', '.join(sorted(known))}) nor a file")
            continue
        try:
            load_split(spec, num_classes=check.num_classes)
            count += 1
        except ZsarError as exc:
            check.add(f"[splits] {name!r}: {exc}")
    unseen = config.splits.random_unseen
    if unseen:
        if check.num_classes is not None and not 0 < unseen < check.num_classes - 1:
            check.add(f"[splits] random_unseen = {unseen} does not fit {check.num_classes} classes")
        count += len(config.splits.random_seeds)
    return count


def _check_evaluate(config: ExperimentConfig, check: ConfigCheck) -> None:
    ev = config.evaluate
    if not DEVICE.match(ev.device):
        check.add(f"[evaluate] device = {ev.device!r}: use cpu, cuda, cuda:N or mps")
    if ev.search_backend not in BACKENDS:
        check.add(f"[evaluate] search_backend = {ev.search_backend!r}: use one of {BACKENDS}")
    if not isinstance(ev.threads, int) or isinstance(ev.threads, bool) or ev.threads < 0:
        check.add(f"[evaluate] threads = {ev.threads!r}: a whole number, 0 for the free cores")
    for key in ("gzsl", "allow_leakage", "select_on_test", "leaderboard_columns"):
        if not isinstance(getattr(ev, key), bool):
            check.add(f"[evaluate] {key} = {getattr(ev, key)!r}: true or false")
    if not isinstance(ev.top_k, int) or isinstance(ev.top_k, bool) or ev.top_k < 1:
        check.add(f"[evaluate] top_k = {ev.top_k!r}: a positive whole number")
    if ev.epoch_choice not in EPOCH_RULES:
        check.add(f"[evaluate] epoch_choice = {ev.epoch_choice!r}: use one of {EPOCH_RULES}")


def check_experiment(config: ExperimentConfig, source: Path | None = None) -> ConfigCheck:
    """All problems of `config` at once, as one ZsarError (naming `source`); else what will run."""
    check = ConfigCheck()
    for i, spec in enumerate(config.heads):
        _check_head(spec, f"[[heads]] #{i + 1}", check, config.evaluate.device)
    _check_paths(config, check)
    _check_text(config, check)
    _check_evaluate(config, check)
    check.num_classes = _data_classes(config, check)
    check.splits = _check_splits(config, check)
    check.runs = len(config.heads) * check.splits * len(config.seeds)
    if check.problems:
        listed = "\n".join(f"  - {p}" for p in check.problems)
        raise ZsarError(f"{len(check.problems)} problem(s) in the experiment config:\n{listed}", source)
    return check
