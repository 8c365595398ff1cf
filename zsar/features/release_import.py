"""Import the published SA-DVAE / SynSE feature releases (`resources/` folder) into zsar caches and splits.

Layout read (0-based global class ids throughout):
- `label_splits/<ds>/ru<u>.npy` unseen classes, `rv<u>_0.npy` validation-unseen classes (`rs*.npy`: their
  complements, checked);
- `sk_feats/<backbone>_<ds>_<u>_r/`: `train.npy` [N, D] + `train_label.npy`, `gtest.npy` + `g_label.npy` (every
  test sample) and `gtest_out.npy` [N_test, C] (the backbone's logits), `ztest.npy` + `z_label.npy` (the unseen
  test samples, a subset of gtest; checked, not stored twice);
- `sk_feats/<backbone>_<ds>_val_<u>_r/`: features of an encoder trained on the validation-seen classes only:
  `train`, `ztest` / `z_label` (validation-unseen), `val` / `val_label` (held-out validation-seen);
- `text_feats/<ds>/<encoder>/<variant>_<C>.npy` [C, D_t].
Written per feature folder: a cache (training rows split "train", gtest rows split "test" with the logits),
the validation cache (all its rows split "train"; used for model selection and GZSL calibration so the
validation problem is as clean as the released one), a split file, one prototype file per text variant and an
experiment file that `zsar run` takes as is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from zsar.class_lists.names import BUILTIN_DATASETS, builtin_class_names, canonical_dataset
from zsar.errors import ZsarError
from zsar.features.importer import load_npy
from zsar.features.prototypes import ClassPrototypes, save_prototypes
from zsar.features.schema import CacheHeader
from zsar.features.writer import write_cache

FOLDER = re.compile(r"^(?P<backbone>.+?)_(?P<ds>[a-z]+\d+)_(?P<val>val_)?(?P<unseen>\d+)_r$")
PRESET_BY_DATASET = {"ntu60": "ntu60_synse", "ntu120": "ntu120_synse", "pku51": "pku51_random"}


def _labels(path: Path, n: int) -> np.ndarray:
    labels = load_npy(path).reshape(-1).astype(np.int64)
    if labels.size != n:
        raise ZsarError(f"{labels.size} labels for {n} feature rows", path)
    return labels


def _features(folder: Path, name: str, label_name: str) -> tuple[np.ndarray, np.ndarray]:
    x = load_npy(folder / f"{name}.npy").astype(np.float32)
    if x.ndim != 2:
        raise ZsarError(f"features must be [N, D], got shape {x.shape}", folder / f"{name}.npy")
    if not np.isfinite(x).all():
        raise ZsarError("features contain NaN or inf", folder / f"{name}.npy")
    return x, _labels(folder / f"{label_name}.npy", len(x))


def _class_names(ds: str, num_classes: int) -> list[str]:
    key = canonical_dataset(ds) if ds else ""
    if key in BUILTIN_DATASETS:
        names = builtin_class_names(key)
        if len(names) == num_classes:
            return names
    return [f"class {i}" for i in range(num_classes)]


def _table(labels: np.ndarray, split: str, prefix: str, names: list[str], source: str) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": [f"{prefix}{i:06d}" for i in range(len(labels))], "label": labels,
                         "split": split, "class_name": [names[c] for c in labels], "source": source})


def _check_ids(ids: np.ndarray, num_classes: int, path: Path) -> list[int]:
    if ids.size == 0 or ids.min() < 0 or ids.max() >= num_classes or np.unique(ids).size != ids.size:
        raise ZsarError(f"class ids must be distinct and in 0..{num_classes - 1}, got {ids.tolist()[:10]}", path)
    return sorted(int(c) for c in ids)


def _split_files(resources: Path, ds: str, unseen_count: int, num_classes: int) -> tuple[list[int], list[int]]:
    folder = resources / "label_splits" / ds
    unseen = _check_ids(load_npy(folder / f"ru{unseen_count}.npy").reshape(-1), num_classes,
                        folder / f"ru{unseen_count}.npy")
    val_unseen = _check_ids(load_npy(folder / f"rv{unseen_count}_0.npy").reshape(-1), num_classes,
                            folder / f"rv{unseen_count}_0.npy")
    if len(unseen) != unseen_count:
        raise ZsarError(f"{len(unseen)} unseen classes in a {unseen_count}-unseen split",
                        folder / f"ru{unseen_count}.npy")
    if set(val_unseen) & set(unseen):
        raise ZsarError("validation-unseen classes overlap the unseen classes", folder / f"rv{unseen_count}_0.npy")
    seen_file = folder / f"rs{num_classes - unseen_count}.npy"
    if seen_file.is_file():
        seen = _check_ids(load_npy(seen_file).reshape(-1), num_classes, seen_file)
        if sorted(set(seen) | set(unseen)) != list(range(num_classes)) or set(seen) & set(unseen):
            raise ZsarError("seen and unseen classes do not partition the classes", seen_file)
    return unseen, val_unseen


def _import_text(resources: Path, ds: str, num_classes: int, names: list[str], out: Path) -> list[dict]:
    records = []
    for path in sorted((resources / "text_feats" / ds).glob(f"*/*_{num_classes}.npy")):
        vectors = load_npy(path).astype(np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != num_classes:
            raise ZsarError(f"text features must be [{num_classes}, D], got shape {vectors.shape}", path)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.isfinite(vectors).all() or (norms == 0).any():
            raise ZsarError("text features contain NaN, inf or zero rows", path)
        encoder, variant = path.parent.name, path.stem.rsplit("_", 1)[0]
        protos = ClassPrototypes(np.arange(num_classes), names, vectors / norms, variant,
                                 [[n] for n in names], f"{encoder} (imported from {path.name})")
        target = save_prototypes(out / f"prototypes__{ds}__{encoder}__{variant}.h5", [protos])
        records.append({"encoder": encoder, "variant": variant, "path": str(target), "dim": int(vectors.shape[1])})
    if not records:
        raise ZsarError(f"no text features named *_{num_classes}.npy", resources / "text_feats" / ds)
    return records


def _import_folder(folder: Path, val_folder: Path | None, ds: str, unseen: list[int], num_classes: int,
                   names: list[str], out: Path) -> dict:
    train_x, train_y = _features(folder, "train", "train_label")
    test_x, test_y = _features(folder, "gtest", "g_label")
    logits = load_npy(folder / "gtest_out.npy").astype(np.float32)
    if logits.shape != (len(test_x), num_classes):
        raise ZsarError(f"logits have shape {logits.shape}, expected {(len(test_x), num_classes)}",
                        folder / "gtest_out.npy")
    if (folder / "ztest.npy").is_file():
        z_x, z_y = _features(folder, "ztest", "z_label")
        if not set(np.unique(z_y).tolist()) <= set(unseen):
            raise ZsarError("z_label holds classes that are not unseen in this split", folder / "z_label.npy")
        if len(z_x) != int(np.isin(test_y, unseen).sum()):
            raise ZsarError(f"{len(z_x)} unseen test rows in ztest but {int(np.isin(test_y, unseen).sum())} in gtest",
                            folder / "ztest.npy")
    leaked = sorted(set(np.unique(train_y).tolist()) & set(unseen))
    if leaked:
        raise ZsarError(f"training features include unseen classes {leaked}", folder / "train_label.npy")
    seen = [c for c in range(num_classes) if c not in unseen]
    table = pd.concat([_table(train_y, "train", "train_", names, folder.name),
                       _table(test_y, "test", "gtest_", names, folder.name)], ignore_index=True)
    nan_logits = np.full((len(train_x), num_classes), np.nan, dtype=np.float32)  # released without train logits
    header = CacheHeader(dataset=ds, modality="skeleton", encoder=folder.name.split(f"_{ds}_")[0],
                         embedding_dim=int(train_x.shape[1]), class_names=tuple(names), dtype="float32",
                         encoder_config={"imported_from": str(folder), "release": "sadvae/synse resources"},
                         trained_classes=tuple(seen), logit_classes=tuple(range(num_classes)))
    cache = write_cache(out / f"{folder.name}.h5", header, table, np.concatenate([train_x, test_x]),
                        np.concatenate([nan_logits, logits]), overwrite=True)
    record = {"folder": str(folder), "cache": str(cache), "train": len(train_x), "test": len(test_x)}
    if val_folder is not None:
        parts = [_features(val_folder, "train", "train_label")]
        parts += [_features(val_folder, name, label) for name, label in (("ztest", "z_label"), ("val", "val_label"))
                  if (val_folder / f"{name}.npy").is_file()]
        vx, vy = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        if vx.shape[1] != train_x.shape[1]:
            raise ZsarError(f"validation features are {vx.shape[1]}-d, the split's {train_x.shape[1]}-d", val_folder)
        if set(np.unique(vy).tolist()) & set(unseen):
            raise ZsarError("validation features include unseen classes", val_folder)
        vheader = CacheHeader(dataset=ds, modality="skeleton", encoder=header.encoder,
                              embedding_dim=int(vx.shape[1]), class_names=tuple(names), dtype="float32",
                              encoder_config={"imported_from": str(val_folder), "release": "sadvae/synse resources"})
        record["validation_cache"] = str(write_cache(out / f"{val_folder.name}.h5", vheader,
                                                     _table(vy, "train", "val_", names, val_folder.name), vx,
                                                     overwrite=True))
    return record


def _experiment_toml(name: str, record: dict, split_file: Path, text: dict, ds: str) -> str:
    lines = [f'# imported from {record["folder"]}', f'name = "{name}"', "seeds = [5]", "", "[data]",
             'source = "cache"', f"cache = {json.dumps(Path(record['cache']).name)}"]
    if "validation_cache" in record:
        lines.append(f"validation_cache = {json.dumps(Path(record['validation_cache']).name)}")
    lines += ["", "[text]", f"prototypes = {json.dumps(Path(text['path']).name)}", f'variant = "{text["variant"]}"',
              "", "[splits]", f"names = [{json.dumps(split_file.name)}]", ""]
    preset = PRESET_BY_DATASET.get(canonical_dataset(ds) if ds else "", "generic")
    lines += ["[[heads]]", 'name = "sadvae"', f'params = {{ preset = "{preset}", feature_scaling = "none" }}', "",
              "[[heads]]", 'name = "nearest_prototype"', "", "[[heads]]", 'name = "linear_projection"', "",
              "[evaluate]", "gzsl = true", ""]
    return "\n".join(lines)


def import_sadvae_release(resources: str | Path, out: str | Path) -> list[dict]:
    """Convert every feature folder of a `resources/` release; returns one record per folder (caches, split,
    prototypes and the experiment file written)."""
    resources, out = Path(resources), Path(out)
    feats = resources / "sk_feats"
    if not feats.is_dir():
        raise ZsarError("not an SA-DVAE / SynSE resources folder: no sk_feats/ inside", resources)
    folders = {p.name: p for p in sorted(feats.iterdir()) if p.is_dir() and FOLDER.match(p.name)}
    main = [p for name, p in folders.items() if not FOLDER.match(name)["val"]]
    if not main:
        raise ZsarError("no feature folders named <backbone>_<dataset>_<unseen>_r", feats)
    out.mkdir(parents=True, exist_ok=True)
    records, texts_by_dataset = [], {}
    for folder in main:
        m = FOLDER.match(folder.name)
        ds, unseen_count = m["ds"], int(m["unseen"])
        out_file = folder / "gtest_out.npy"
        num_classes = int(load_npy(out_file).shape[1]) if out_file.is_file() else 0
        if num_classes <= unseen_count:
            raise ZsarError("gtest_out.npy (the backbone's logits over all classes) is missing or too narrow",
                            out_file)
        names = _class_names(ds, num_classes)
        unseen, val_unseen = _split_files(resources, ds, unseen_count, num_classes)
        val_folder = folders.get(f"{m['backbone']}_{ds}_val_{unseen_count}_r")
        record = _import_folder(folder, val_folder, ds, unseen, num_classes, names, out)
        split_file = out / f"{folder.name}.split.toml"
        split_file.write_text(f"# {folder.name}: the release's label_splits/{ds}/ru{unseen_count}.npy and "
                              f"rv{unseen_count}_0.npy\nnum_classes = {num_classes}\nunseen = {unseen}\n"
                              f"validation_unseen = {val_unseen}\n", encoding="utf-8")
        if (ds, num_classes) not in texts_by_dataset:  # several folders of one dataset share its text features
            texts_by_dataset[ds, num_classes] = _import_text(resources, ds, num_classes, names, out)
        texts = texts_by_dataset[ds, num_classes]
        experiments = []
        for text in texts:
            exp_name = f"{folder.name}__{text['encoder']}__{text['variant']}"
            path = out / f"{exp_name}.toml"
            path.write_text(_experiment_toml(exp_name, record, split_file, text, ds), encoding="utf-8")
            experiments.append(str(path))
        records.append({**record, "split": str(split_file), "unseen": unseen, "validation_unseen": val_unseen,
                        "prototypes": texts, "experiments": experiments})
    return records
