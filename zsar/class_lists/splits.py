"""Zero-shot class splits: the standard ones by name, user files, and a seeded generator.

A split divides class indices into seen and unseen. It also carries a *validation* zero-shot
problem carved out of the seen classes (`validation_unseen`), on which heads choose their
hyper-parameters and GZSL gates are fitted, so that the test classes are touched only once.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from zsar.class_lists.names import BUILTIN_DATASETS, builtin_class_names, canonical_dataset
from zsar.errors import ZsarError


@dataclass(frozen=True)
class ZeroShotSplit:
    """Seen/unseen partition of `num_classes` class indices, with its validation problem."""

    name: str  # e.g. "ntu60/55-5", "random(10,2,seed=1)", or a file path
    num_classes: int
    unseen: tuple[int, ...]
    validation_unseen: tuple[int, ...]  # a subset of the seen classes
    validation_seed: int | None = None  # seed that drew validation_unseen, None when published/given

    def __post_init__(self) -> None:
        classes = set(range(self.num_classes))
        unseen, val = set(self.unseen), set(self.validation_unseen)
        problems = []
        if len(unseen) != len(self.unseen):
            problems.append("unseen classes repeat")
        if not unseen:
            problems.append("no unseen classes")
        if not unseen <= classes:
            problems.append(f"unseen classes {sorted(unseen - classes)} are outside 0..{self.num_classes - 1}")
        if val & unseen:
            problems.append(f"validation classes {sorted(val & unseen)} are unseen test classes")
        if not val <= classes:
            problems.append(f"validation classes {sorted(val - classes)} are outside 0..{self.num_classes - 1}")
        if len(classes - unseen) < 2:
            problems.append("fewer than two seen classes")
        if problems:
            raise ZsarError(f"invalid zero-shot split {self.name!r}: " + "; ".join(problems))

    @property
    def seen(self) -> tuple[int, ...]:
        return tuple(c for c in range(self.num_classes) if c not in set(self.unseen))

    @property
    def validation_seen(self) -> tuple[int, ...]:
        """Seen classes that stay seen in the validation problem."""
        val = set(self.validation_unseen)
        return tuple(c for c in self.seen if c not in val)

    def validation_split(self) -> ZeroShotSplit:
        """The validation problem as a split of its own: unseen' = val. Its `seen` property also counts this
        split's unseen (test) classes, which have no training samples; the classes that stay seen are
        `self.validation_seen`."""
        if not self.validation_unseen:
            raise ZsarError(f"split {self.name!r} has no validation classes")
        return ZeroShotSplit(
            name=f"{self.name}:validation",
            num_classes=self.num_classes,
            unseen=self.validation_unseen,
            validation_unseen=(),
            validation_seed=self.validation_seed,
        )

    def validation_encoder_split(self) -> ZeroShotSplit:
        """What an encoder for the validation problem may learn: `validation_seen` only (both the validation
        and the test unseen classes are unseen to it)."""
        if not self.validation_unseen:
            raise ZsarError(f"split {self.name!r} has no validation classes")
        return ZeroShotSplit(
            name=f"{self.name}:validation-encoder",
            num_classes=self.num_classes,
            unseen=tuple(sorted(set(self.unseen) | set(self.validation_unseen))),
            validation_unseen=(),
            validation_seed=self.validation_seed,
        )

    def to_dict(self) -> dict:
        out = asdict(self)
        out["seen"] = list(self.seen)
        out["unseen"] = list(self.unseen)
        out["validation_unseen"] = list(self.validation_unseen)
        return out


def _draw_validation(num_classes: int, unseen: tuple[int, ...], size: int, seed: int) -> tuple[int, ...]:
    seen = [c for c in range(num_classes) if c not in set(unseen)]
    size = min(size, len(seen) - 2)  # keep at least two seen classes in the validation problem
    if size < 1:
        return ()
    rng = np.random.default_rng(seed)
    return tuple(sorted(int(c) for c in rng.choice(seen, size=size, replace=False)))


def make_split(
    name: str,
    num_classes: int,
    unseen: list[int] | tuple[int, ...],
    validation_unseen: list[int] | tuple[int, ...] | None = None,
    validation_seed: int = 0,
) -> ZeroShotSplit:
    """Build a split; when no validation classes are given, draw as many as unseen from the seen."""
    unseen = tuple(int(c) for c in unseen)
    if validation_unseen is None:
        val = _draw_validation(num_classes, unseen, len(unseen), validation_seed)
        return ZeroShotSplit(name, num_classes, unseen, val, validation_seed)
    return ZeroShotSplit(name, num_classes, unseen, tuple(int(c) for c in validation_unseen), None)


def random_split(num_classes: int, num_unseen: int, seed: int) -> ZeroShotSplit:
    """A seeded random split; its validation classes are drawn from the seen with the same seed."""
    if not 0 < num_unseen < num_classes - 1:
        raise ZsarError(f"cannot draw {num_unseen} unseen classes out of {num_classes}")
    rng = np.random.default_rng(seed)
    unseen = tuple(sorted(int(c) for c in rng.choice(num_classes, size=num_unseen, replace=False)))
    val = _draw_validation(num_classes, unseen, num_unseen, seed + 1_000_003)
    return ZeroShotSplit(f"random({num_classes},{num_unseen},seed={seed})", num_classes, unseen, val, seed)


def _builtin_table() -> dict:
    text = resources.files("zsar.class_lists").joinpath("data", "splits.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def builtin_split_names() -> list[str]:
    """All standard split names, e.g. `ntu60/55-5`."""
    return [f"{ds}/{name}" for ds, splits in _builtin_table().items() for name in splits]


def load_split(spec: str | Path, num_classes: int | None = None, validation_seed: int = 0) -> ZeroShotSplit:
    """Load a split by standard name (`ntu60/55-5`, `pku51/random-2`) or from a TOML/JSON file.

    A file holds `unseen = [...]`, optionally `validation_unseen = [...]` and `num_classes`
    (needed unless passed here).
    """
    path = Path(spec)
    if path.suffix.lower() in (".toml", ".json") or path.exists():
        return _split_from_file(path, num_classes, validation_seed)
    text = str(spec)
    dataset, _, split_name = text.partition("/")
    dataset = canonical_dataset(dataset)
    table = _builtin_table()
    if dataset not in table or split_name not in table[dataset]:
        known = ", ".join(builtin_split_names())
        raise ZsarError(f"unknown split {text!r}; standard splits: {known}; or give a .toml/.json file")
    entry = table[dataset][split_name]
    n = len(builtin_class_names(dataset)) if dataset in BUILTIN_DATASETS else int(entry["num_classes"])
    if num_classes is not None and num_classes != n:
        raise ZsarError(f"split {text!r} is for {n} classes but the data has {num_classes}")
    return make_split(f"{dataset}/{split_name}", n, entry["unseen"], entry.get("validation_unseen"), validation_seed)


def _split_from_file(path: Path, num_classes: int | None, validation_seed: int) -> ZeroShotSplit:
    if not path.is_file():
        raise ZsarError("split file not found", path)
    try:
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw)
    except (OSError, ValueError) as exc:
        raise ZsarError(f"cannot parse split file: {exc}", path) from exc
    unknown = set(data) - {"unseen", "validation_unseen", "num_classes", "name"}
    if unknown:
        raise ZsarError(f"unknown keys in split file: {sorted(unknown)}", path)
    if "unseen" not in data:
        raise ZsarError("split file has no `unseen` list", path)
    n = data.get("num_classes", num_classes)
    if n is None:
        raise ZsarError("split file needs `num_classes` (or pass the class count)", path)
    if num_classes is not None and int(n) != num_classes:
        raise ZsarError(f"split is for {n} classes but the data has {num_classes}", path)
    try:
        return make_split(
            data.get("name", str(path)), int(n), data["unseen"], data.get("validation_unseen"), validation_seed
        )
    except ZsarError as exc:
        raise ZsarError(exc.problem, path) from exc
