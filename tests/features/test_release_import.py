"""`zsar import sadvae` on a miniature of the SA-DVAE / SynSE `resources/` layout made here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from zsar.cli import app
from zsar.errors import ZsarError
from zsar.features import FeatureCache
from zsar.features.prototypes import load_prototypes
from zsar.features.release_import import import_sadvae_release

C, UNSEEN, D, DT = 60, 5, 16, 24


def make_release(root: Path, seed: int = 0) -> dict:
    """NTU-60 55/5 in miniature: 6 training and 3 test samples per class, 16-d features, 24-d text."""
    rng = np.random.default_rng(seed)
    classes = rng.permutation(C)
    unseen, seen = np.sort(classes[:UNSEEN]), np.sort(classes[UNSEEN:])
    val_unseen = np.sort(rng.choice(seen, UNSEEN, replace=False))
    val_seen = np.setdiff1d(seen, val_unseen)
    text = rng.standard_normal((C, DT)).astype(np.float32)
    mapping = rng.standard_normal((DT, D)).astype(np.float32)

    def feats(labels):
        return np.maximum(text[labels] @ mapping + 0.3 * rng.standard_normal((len(labels), D)), 0).astype(np.float32)

    splits = root / "label_splits" / "ntu60"
    splits.mkdir(parents=True)
    for name, ids in {"ru5": unseen, "rs55": seen, "rv5_0": val_unseen, "rs50_0": val_seen}.items():
        np.save(splits / f"{name}.npy", ids)
    main, val = root / "sk_feats" / "shift_ntu60_5_r", root / "sk_feats" / "shift_ntu60_val_5_r"
    main.mkdir(parents=True)
    val.mkdir(parents=True)
    train_y = np.repeat(seen, 6)
    test_y = np.repeat(np.arange(C), 3)
    arrays = {"train": feats(train_y), "train_label": train_y, "gtest": feats(test_y), "g_label": test_y,
              "gtest_out": rng.standard_normal((len(test_y), C)).astype(np.float32)}
    z = np.isin(test_y, unseen)
    arrays.update(ztest=arrays["gtest"][z], z_label=test_y[z])
    for name, a in arrays.items():
        np.save(main / f"{name}.npy", a)
    v_train, v_z, v_val = np.repeat(val_seen, 5), np.repeat(val_unseen, 2), np.repeat(val_seen, 1)
    for name, a in {"train": feats(v_train), "train_label": v_train, "ztest": feats(v_z), "z_label": v_z,
                    "val": feats(v_val), "val_label": v_val,
                    "ztest_out": rng.standard_normal((len(v_z), 50)).astype(np.float32),
                    "val_out": rng.standard_normal((len(v_val), 50)).astype(np.float32)}.items():
        np.save(val / f"{name}.npy", a)
    text_dir = root / "text_feats" / "ntu60" / "sbert"
    text_dir.mkdir(parents=True)
    np.save(text_dir / "lb_60.npy", text)
    np.save(text_dir / "chat_60.npy", text + 0.1 * rng.standard_normal(text.shape).astype(np.float32))
    return {"unseen": unseen, "val_unseen": val_unseen, "arrays": arrays, "text": text}


def test_import_writes_caches_splits_prototypes_and_runs(tmp_path):
    release = make_release(tmp_path / "resources")
    records = import_sadvae_release(tmp_path / "resources", tmp_path / "out")
    assert len(records) == 1
    rec = records[0]
    assert rec["unseen"] == release["unseen"].tolist() and rec["validation_unseen"] == release["val_unseen"].tolist()
    cache = FeatureCache(rec["cache"])
    assert cache.class_names[0] == "drink water"  # NTU-60 names for an ntu60 release
    assert sorted(cache.header.trained_classes) == sorted(set(range(C)) - set(rec["unseen"]))
    train, test = cache.load("train"), cache.load("test")
    np.testing.assert_array_equal(train.embeddings, release["arrays"]["train"])
    np.testing.assert_array_equal(test.labels, release["arrays"]["g_label"])
    np.testing.assert_array_equal(test.logits, release["arrays"]["gtest_out"])
    assert np.isnan(train.logits).all()  # released without training logits
    val = FeatureCache(rec["validation_cache"]).load("train")
    assert not set(val.labels.tolist()) & set(rec["unseen"]) and len(val) == 50 * 5 + 5 * 2 + 50
    protos = load_prototypes(next(p["path"] for p in rec["prototypes"] if p["variant"] == "lb"))
    text = release["text"]
    np.testing.assert_allclose(protos.vectors, text / np.linalg.norm(text, axis=1, keepdims=True), rtol=1e-6)
    assert {p["variant"] for p in rec["prototypes"]} == {"lb", "chat"}


def test_imported_experiment_runs_end_to_end(tmp_path):
    make_release(tmp_path / "resources")
    runner = CliRunner()
    result = runner.invoke(app, ["import", "sadvae", str(tmp_path / "resources"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    experiment = next(p for p in (tmp_path / "out").glob("*__lb.toml"))
    result = runner.invoke(app, ["run", str(experiment), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["heads"]) == {"sadvae", "nearest_prototype", "linear_projection"}
    assert report["caches"]["validation_features"]["path"].endswith("shift_ntu60_val_5_r.h5")
    run = next(r for r in report["runs"] if r["head"] == "sadvae")
    assert run["gzsl"]["gate_seen_scores"] == "encoder logits (cache)"  # the release's gtest_out
    assert 1 <= run["params"]["epochs"] <= 10  # chosen on the validation features
    assert report["heads"]["nearest_prototype"]["zsl"]["top1"]["mean"] > 20 * 1.5  # chance is 20 %


def test_import_bad_input(tmp_path):
    with pytest.raises(ZsarError, match="no sk_feats"):
        import_sadvae_release(tmp_path, tmp_path / "out")
    make_release(tmp_path / "r1")
    (tmp_path / "r1" / "sk_feats" / "shift_ntu60_5_r" / "gtest_out.npy").unlink()
    with pytest.raises(ZsarError, match="gtest_out.npy"):
        import_sadvae_release(tmp_path / "r1", tmp_path / "out")
    release = make_release(tmp_path / "r2")
    folder = tmp_path / "r2" / "sk_feats" / "shift_ntu60_5_r"
    labels = release["arrays"]["train_label"].copy()
    labels[0] = release["unseen"][0]
    np.save(folder / "train_label.npy", labels)
    with pytest.raises(ZsarError, match="unseen classes") as err:
        import_sadvae_release(tmp_path / "r2", tmp_path / "out")
    assert "train_label.npy" in str(err.value)
    np.save(folder / "train_label.npy", labels[:-1])
    with pytest.raises(ZsarError, match="labels for"):
        import_sadvae_release(tmp_path / "r2", tmp_path / "out")
