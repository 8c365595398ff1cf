"""The official checkpoints behind zsar's encoder short names, read from mmaction2's model-zoo metadata.

mmaction2 ships a `metafile.yml` beside its configs (`mmaction/.mim/configs/**/metafile.yml`). Each model entry
names its config, its training data, the accuracy its authors report, and where its weights are published. For
every short name of `BUILTIN_CONFIGS`, `encoder_zoo()` finds the entry whose `Config` ends with the short name's
config path and returns those facts. Nothing here downloads anything: the weights address is metadata, shown so
that a user can fetch the checkpoint themselves and pass the local file as `--checkpoint`.

`zsar encoder list` prints the table; `zoo_markdown()` is the README's generated block (see
`zsar.experiment.config_keys` for regenerating it).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

from zsar.errors import ZsarError
from zsar.extract.mmaction_compat import BUILTIN_CONFIGS


@dataclass(frozen=True)
class ZooEntry:
    """One short name and what mmaction2's model zoo says about its config's official checkpoint."""

    short_name: str
    config: str  # path under mmaction2's configs, as in BUILTIN_CONFIGS
    model: str | None = None  # the metafile entry's `Name`; None: no entry for this config
    training_data: str | None = None  # `Metadata: Training Data`, else the dataset the results are reported on
    reported_on: str | None = None  # the `Results` dataset the accuracies belong to
    top1: float | None = None
    top5: float | None = None
    weights: str | None = None  # the published checkpoint's address (never fetched by zsar)
    converted_from: str | None = None  # `Converted From: Weights`: the original authors' release, if converted
    metafile: str | None = None  # the metafile the entry came from, relative to the package's `.mim`

    @property
    def weights_name_mismatch(self) -> bool:
        """True when the weights file is named for another model than the entry (an upstream metadata slip)."""
        if not self.weights or not self.model:
            return False
        return not PurePosixPath(self.weights).name.startswith(self.model)

    def to_dict(self) -> dict:
        return {**asdict(self), "weights_name_mismatch": self.weights_name_mismatch}


def mmaction_package_dir() -> Path | None:
    """The installed mmaction2 package folder, found without importing it; None when it is not installed."""
    try:
        spec = importlib.util.find_spec("mmaction")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def mmaction_version() -> str | None:
    try:
        return metadata.version("mmaction2")
    except metadata.PackageNotFoundError:
        return None


def _yaml():
    try:
        import yaml
    except ImportError as exc:  # PyYAML comes with mmengine (the `mm` extra)
        raise ZsarError("reading mmaction2's model-zoo metadata needs PyYAML (install the `mm` extra)") from exc
    return yaml


def _mim_root(package_dir: Path | None) -> Path:
    package_dir = mmaction_package_dir() if package_dir is None else Path(package_dir)
    if package_dir is None:
        raise ZsarError("mmaction2 is not installed (the `mm` extra): its model-zoo metadata is not available")
    root = package_dir / ".mim"
    if not (root / "configs").is_dir():
        raise ZsarError("the mmaction2 package has no .mim/configs folder (a source checkout?)", package_dir)
    return root


def metafile_models(package_dir: Path | None = None) -> list[tuple[str, dict]]:
    """Every model entry of every `metafile.yml` under the package's configs, with its metafile's path relative to
    `.mim`, in path order. A metafile that is not valid YAML is one error naming it."""
    yaml = _yaml()
    root = _mim_root(package_dir)
    out: list[tuple[str, dict]] = []
    for path in sorted((root / "configs").rglob("metafile.yml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ZsarError(f"cannot read mmaction2's model-zoo metadata: {exc}", path) from exc
        models = data.get("Models") if isinstance(data, dict) else None
        for model in models or []:
            if isinstance(model, dict):
                out.append((path.relative_to(root).as_posix(), model))
    return out


def _config_matches(entry_config: object, config: str) -> bool:
    """The metafile's `Config` (e.g. `configs/skeleton/stgcn/x.py`) ends with the short name's path, at a `/`."""
    if not isinstance(entry_config, str):
        return False
    entry_config, config = entry_config.replace("\\", "/"), config.replace("\\", "/").lstrip("/")
    return entry_config == config or entry_config.endswith("/" + config)


def _number(value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _entry(short_name: str, config: str, metafile: str | None, model: dict | None) -> ZooEntry:
    if model is None:
        return ZooEntry(short_name, config)
    results = model.get("Results") or []
    results = [results] if isinstance(results, dict) else [r for r in results if isinstance(r, dict)]
    with_top1 = [r for r in results if isinstance(r.get("Metrics"), dict) and "Top 1 Accuracy" in r["Metrics"]]
    result = (with_top1 or results or [{}])[0]
    metrics = result.get("Metrics") if isinstance(result.get("Metrics"), dict) else {}
    meta = model.get("Metadata") if isinstance(model.get("Metadata"), dict) else {}
    converted = model.get("Converted From") if isinstance(model.get("Converted From"), dict) else {}
    reported_on = result.get("Dataset")
    return ZooEntry(
        short_name=short_name, config=config, model=model.get("Name"),
        training_data=meta.get("Training Data") or reported_on, reported_on=reported_on,
        top1=_number(metrics.get("Top 1 Accuracy")), top5=_number(metrics.get("Top 5 Accuracy")),
        weights=model.get("Weights"), converted_from=converted.get("Weights"), metafile=metafile)


def encoder_zoo(short_names: dict[str, str] | None = None, package_dir: Path | None = None) -> list[ZooEntry]:
    """Per short name (default: `BUILTIN_CONFIGS`, in its order): the config and the model-zoo facts of its
    official checkpoint. A short name whose config has no metafile entry comes back with only its config."""
    short_names = BUILTIN_CONFIGS if short_names is None else short_names
    models = metafile_models(package_dir)
    entries = []
    for name, config in short_names.items():
        found = next(((f, m) for f, m in models if _config_matches(m.get("Config"), config)), (None, None))
        entries.append(_entry(name, config, *found))
    return entries


def _accuracy(value: float | None) -> str:
    return "-" if value is None else str(value)


def _dataset_text(entry: ZooEntry) -> str:
    if entry.training_data is None:
        return "-"
    if entry.reported_on and entry.reported_on != entry.training_data:
        return f"{entry.training_data} (reported on {entry.reported_on})"
    return entry.training_data


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def zoo_markdown(entries: list[ZooEntry] | None = None, version: str | None = None) -> str:
    """The README's encoder table: short name, config, training data, reported accuracy, published checkpoint."""
    entries = encoder_zoo() if entries is None else entries
    version = mmaction_version() if version is None else version
    lines = ["| short name | mmaction2 config (under `mmaction/.mim/configs/`) | trained on | top-1 | top-5 | "
             "official checkpoint |",
             "|---|---|---|---|---|---|"]
    notes = []
    for e in entries:
        if e.model is None:
            weights = "no model-zoo entry"
        else:
            weights = f"[weights]({e.weights})" if e.weights else "not published"
            if e.converted_from:
                weights += f", converted from [the authors' release]({e.converted_from})"
            if e.weights_name_mismatch:
                weights += " (see the note below)"
                notes.append(f"- `{e.short_name}`: the metadata's weights file is named for another model than its "
                             f"entry `{e.model}`; check that the file fits the config before using it.")
        lines.append(f"| `{e.short_name}` | `{_cell(e.config)}` | {_cell(_dataset_text(e))} | {_accuracy(e.top1)} | "
                     f"{_accuracy(e.top5)} | {weights} |")
    source = f"mmaction2 {version}" if version else "mmaction2"
    lines += ["", f"Facts from the model-zoo metadata (`metafile.yml`) shipped with {source}; top-1 / top-5 are the "
                  "accuracies its authors report on the dataset named (percent). `zsar encoder list` prints the same."]
    if notes:
        lines += [""] + notes
    return "\n".join(lines)


def zoo_text(entries: list[ZooEntry]) -> str:
    """The table for a terminal: one line per short name, then its config and checkpoint address."""
    width = max((len(e.short_name) for e in entries), default=10) + 2
    lines = []
    for e in entries:
        accuracy = f"top-1 {_accuracy(e.top1)}" + (f"  top-5 {_accuracy(e.top5)}" if e.top5 is not None else "")
        lines.append(f"{e.short_name:<{width}}{_dataset_text(e)}   {accuracy if e.model else 'no model-zoo entry'}")
        lines.append(f"{'':<{width}}config:  {e.config}")
        if e.weights:
            lines.append(f"{'':<{width}}weights: {e.weights}"
                         + ("  (named for another model: check it fits)" if e.weights_name_mismatch else ""))
        if e.converted_from:
            lines.append(f"{'':<{width}}converted from: {e.converted_from}")
    lines.append("Download a checkpoint yourself and pass the file as --checkpoint; zsar never downloads weights.")
    return "\n".join(lines)
