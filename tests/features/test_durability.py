"""The cache never lies: torn rows, crashes at every write call, full disks, two writers, bit flips, changed
inputs, interrupted publishes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from zsar.errors import ZsarError
from zsar.features import CacheHeader, CacheWriter, FeatureCache, cache_summary, write_cache
from zsar.features.fingerprint import compute_fingerprint, row_crc32
from zsar.features.importer import import_arrays
from zsar.features.lock import lock_path
from zsar.features.publish import sibling_parquet
from zsar.features.writer import partial_path

REPO = Path(__file__).resolve().parents[2]
CLASSES = ("a", "b", "c", "d")


def header(**kw) -> CacheHeader:
    base = dict(dataset="toy", modality="skeleton", encoder="enc", embedding_dim=8, class_names=CLASSES,
                encoder_config={"x": 1}, logit_classes=(0, 1))
    return CacheHeader(**{**base, **kw})


def table(n: int = 20) -> pd.DataFrame:
    labels = np.arange(n) % 4
    return pd.DataFrame({"sample_id": [f"s{i:03d}" for i in range(n)], "label": labels,
                         "class_name": [CLASSES[c] for c in labels], "split": ["train", "test"] * (n // 2),
                         "source": "gen"})


def arrays(n: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)


def fault_sweep():
    spec = importlib.util.spec_from_file_location("fault_sweep", REPO / "benchmarks" / "fault_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the fill mask never vouches for data that is not there -------------------------------------------------------
def test_rows_torn_in_the_partial_are_computed_again_on_resume(tmp_path, caplog):
    path, (x, lg) = tmp_path / "c.h5", arrays()
    writer = CacheWriter(path, header(), table())
    writer.write(np.arange(10), x[:10], lg[:10])
    writer.close()
    with h5py.File(partial_path(path), "r+") as h5:  # what a crash between data and mask could leave
        h5["embeddings"][3] = 0
    with caplog.at_level("WARNING"), CacheWriter(path, header(), table()) as writer:
        assert writer.pending_rows().tolist() == [3, *range(10, 20)]
        writer.write(writer.pending_rows(), x[writer.pending_rows()], lg[writer.pending_rows()])
        writer.finalize()
    assert "do not match their checksums" in caplog.text
    np.testing.assert_array_equal(FeatureCache(path).load().embeddings, x)


def test_finalize_refuses_to_publish_rows_damaged_after_writing(tmp_path):
    path, (x, lg) = tmp_path / "c.h5", arrays()
    writer = CacheWriter(path, header(), table())
    writer.write(np.arange(20), x, lg)
    writer._file()["logits"][5] = 7.0  # damage behind the writer's back
    with pytest.raises(ZsarError, match="1 rows on disk do not match"):
        writer.finalize()
    writer.close()
    assert not path.exists()
    with CacheWriter(path, header(), table()) as again:
        assert again.pending_rows().tolist() == [5]


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (fault injection needs it)")
def test_kill_or_enospc_at_every_write_call_never_publishes_a_wrong_row():
    """Every write-type syscall of a small job (the data, mask, checksum and publish steps) is hit with
    SIGKILL, and every data write with ENOSPC; the rerun must publish exactly the uninterrupted result."""
    result = fault_sweep().sweep(rows=16, batch=8, enospc_every=2, jobs=2)
    assert result["points"] > 40 and result["calls"]["pwrite64"] > 20
    assert result["failures"] == [], json.dumps(result["failures"], indent=1)
    assert set(result["tally"]) <= {"identical", "set_aside"}


# -- errors are errors -------------------------------------------------------------------------------------------
_FULL_DISK_CHILD = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np, pandas as pd
    from zsar.errors import ZsarError
    from zsar.features import CacheHeader, write_cache
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
    n, d = 4000, 256
    meta = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "label": 0, "class_name": "a", "split": "train",
                         "source": "gen"})
    header = CacheHeader(dataset="toy", modality="other", encoder="enc", embedding_dim=d, class_names=("a",))
    try:
        write_cache(sys.argv[1], header, meta, np.ones((n, d), np.float32), overwrite=True)
    except ZsarError as exc:
        print(exc)
        sys.exit(3)
""")


def _good_cache(path: Path, n: int = 4000) -> str:
    d = 256
    meta = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "label": 0, "class_name": "a", "split": "train",
                         "source": "gen"})
    h = CacheHeader(dataset="toy", modality="other", encoder="enc", embedding_dim=d, class_names=("a",))
    return FeatureCache(write_cache(path, h, meta, np.zeros((n, d), np.float32))).fingerprint


def test_full_disk_during_overwrite_keeps_the_old_cache_and_says_why(tmp_path):
    path = tmp_path / "c.h5"
    fingerprint = _good_cache(path)
    limit = 1_000_000  # the new cache needs about 4 MB
    done = subprocess.run([sys.executable, "-c", _FULL_DISK_CHILD, str(path), str(limit)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]  # a clear error, not a crash or a segfault
    assert "c.h5.partial" in done.stdout and ("cannot reserve" in done.stdout or "File too large" in done.stdout)
    cache = FeatureCache(path)
    assert cache.fingerprint == fingerprint and cache.verify_all(fingerprint=True)["rows_checked"] == 4000
    assert not lock_path(path).exists()


def test_small_real_filesystem_full(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    try:
        path = mount / "c.h5"
        fingerprint = _good_cache(path, n=1000)  # 1 MB (2 MB while publishing) fits; the 4 MB replacement does not
        done = subprocess.run([sys.executable, "-c", _FULL_DISK_CHILD, str(path), str(1 << 40)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 3 and "space" in done.stdout.lower(), done.stdout + done.stderr[-2000:]
        assert FeatureCache(path).fingerprint == fingerprint
        assert sorted(p.name for p in mount.iterdir()) == ["c.h5", "c.parquet"]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_read_only_folder_is_one_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True).returncode == 0
    if not mounted:
        folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK) and not mounted:
            pytest.skip("this user can write to a read-only folder and cannot mount a read-only file system")
        with pytest.raises(ZsarError, match="cannot write here: (Permission denied|Read-only file system)"):
            write_cache(folder / "c.h5", header(), table(), *arrays())
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)
        folder.chmod(0o755)


# -- one writer per cache ----------------------------------------------------------------------------------------
def test_a_second_writer_is_refused_even_with_overwrite(tmp_path):
    path, (x, lg) = tmp_path / "c.h5", arrays()
    first = CacheWriter(path, header(), table())
    first.write(np.arange(10), x[:10], lg[:10])
    for overwrite in (False, True):
        with pytest.raises(ZsarError, match=f"another zsar process is writing this cache \\(pid {os.getpid()}"):
            CacheWriter(path, header(), table(), overwrite=overwrite)
    assert partial_path(path).exists()
    first.write(np.arange(10, 20), x[10:], lg[10:])
    first.finalize()
    first.close()
    assert not lock_path(path).exists()
    np.testing.assert_array_equal(FeatureCache(path).load().embeddings, x)
    with CacheWriter(path, header(), table(), overwrite=True) as second:  # free again
        assert second.pending_rows().size == 20


def test_a_writer_that_dies_leaves_no_lock_behind(tmp_path):
    path = tmp_path / "c.h5"
    here = str(Path(__file__).parent)
    code = (f"import os, sys; sys.path.insert(0, {here!r}); from test_durability import *; "
            f"w = CacheWriter({str(path)!r}, header(), table()); os._exit(9)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 9
    assert lock_path(path).exists()  # the file stays, but the kernel dropped the lock with the process
    with CacheWriter(path, header(), table()) as writer:
        assert writer.pending_rows().size == 20


# -- identity includes content -----------------------------------------------------------------------------------
def test_reimport_of_changed_features_is_refused_then_overwritten(tmp_path):
    x, _ = arrays()
    np.save(tmp_path / "x.npy", x)
    table().drop(columns=["source", "class_name"]).to_csv(tmp_path / "m.csv", index=False)
    (tmp_path / "names.txt").write_text("\n".join(CLASSES))
    args = (tmp_path / "x.npy", tmp_path / "m.csv", tmp_path / "names.txt", tmp_path / "c.h5", "toy", "enc")
    import_arrays(*args)
    assert import_arrays(*args) == tmp_path / "c.h5"  # same features: nothing to do
    np.save(tmp_path / "x.npy", x + 1)
    with pytest.raises(ZsarError, match="computed from other inputs: the input data"):
        import_arrays(*args)
    np.testing.assert_array_equal(FeatureCache(tmp_path / "c.h5").load().embeddings, x)
    import_arrays(*args, overwrite=True)
    np.testing.assert_array_equal(FeatureCache(tmp_path / "c.h5").load().embeddings, x + 1)


def test_resume_refuses_changed_source_files_and_changed_labels(tmp_path):
    source = tmp_path / "sample.json"
    source.write_text("v1")
    meta = table().assign(source=str(source))
    path, (x, lg) = tmp_path / "c.h5", arrays()
    with CacheWriter(path, header(), meta) as writer:
        writer.write(np.arange(5), x[:5], lg[:5])
    source.write_text("version 2")
    with pytest.raises(ZsarError, match="refusing to resume: the input data"):
        CacheWriter(path, header(), meta)
    relabelled = meta.assign(label=(meta["label"] + 1) % 4)
    with pytest.raises(ZsarError, match="the metadata table"):
        CacheWriter(path, header(), relabelled)
    with CacheWriter(path, header(), meta, overwrite=True) as writer:
        assert writer.pending_rows().size == 20


# -- verify what you read ----------------------------------------------------------------------------------------
def test_a_flipped_value_is_an_error_naming_the_sample(tmp_path):
    path = write_cache(tmp_path / "c.h5", header(), table(), *arrays())
    with h5py.File(path, "r+") as h5:
        raw = h5["embeddings"][7]
        raw.view(np.uint32)[3] ^= 1 << 12  # one bit of one value
        h5["embeddings"][7] = raw
    cache = FeatureCache(path)
    with pytest.raises(ZsarError, match=r"embeddings of 1 rows do not match their checksums.*s007"):
        cache.load()
    assert cache.load(split="train").embeddings.shape == (10, 8)  # s007 is a test row: other rows still load
    assert cache.load(verify=False).embeddings.shape == (20, 8)
    with pytest.raises(ZsarError, match="s007"):
        cache_summary(path)
    with h5py.File(path, "r+") as h5:  # an edit that also fixes the row checksum: only the fingerprint sees it
        h5["row_crc32"][7, 0] = row_crc32(h5["embeddings"][7:8])[0]
    assert FeatureCache(path).load().embeddings.shape == (20, 8)
    with pytest.raises(ZsarError, match="fingerprint"):
        FeatureCache(path).verify_all(fingerprint=True)


_FLIP_CHILD = textwrap.dedent("""
    import faulthandler, json, sys
    import numpy as np
    from zsar.errors import ZsarError
    from zsar.features import FeatureCache, cache_summary
    path, original, positions = sys.argv[1], open(sys.argv[1], "rb").read(), json.loads(sys.argv[2])
    expected = FeatureCache(path).load()
    outcomes = {}
    for bit in positions:
        data = bytearray(original)
        data[bit // 8] ^= 1 << (bit % 8)
        open(path, "wb").write(data)
        faulthandler.dump_traceback_later(20, exit=True)  # a hang ends the child: the test sees it
        try:
            cache_summary(path)
            got = FeatureCache(path).load()
            same = (np.array_equal(got.embeddings, expected.embeddings) and np.array_equal(got.logits, expected.logits)
                    and got.metadata.equals(expected.metadata))
            outcomes[bit] = "same" if same else "WRONG DATA"
        except ZsarError:
            outcomes[bit] = "error"
        except Exception as exc:
            outcomes[bit] = f"UNCAUGHT {type(exc).__name__}: {exc}"[:200]
        faulthandler.cancel_dump_traceback_later()
    print(json.dumps(outcomes))
""")


def test_bit_flips_give_a_clear_error_or_the_right_data_never_a_hang(tmp_path):
    path = write_cache(tmp_path / "c.h5", header(), table(), *arrays())
    size = path.stat().st_size
    rng = np.random.default_rng(3)
    positions = sorted(set(rng.integers(0, size * 8, 400).tolist()) | set(range(0, 96 * 8, 7)))
    done = subprocess.run([sys.executable, "-c", _FLIP_CHILD, str(path), json.dumps(positions)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    bad = {bit: outcome for bit, outcome in outcomes.items() if outcome not in ("same", "error")}
    assert not bad, bad
    assert list(outcomes.values()).count("error") > 50


# -- publishing ---------------------------------------------------------------------------------------------------
def test_a_missing_or_stale_parquet_beside_a_finished_cache_is_rebuilt(tmp_path):
    path = write_cache(tmp_path / "c.h5", header(), table(), *arrays())
    expected = pd.read_parquet(sibling_parquet(path))
    sibling_parquet(path).unlink()  # a crash between the two renames
    write_cache(path, header(), table(), *arrays())  # the rerun finds the cache complete
    pd.testing.assert_frame_equal(pd.read_parquet(sibling_parquet(path)), expected)
    expected.head(3).to_parquet(sibling_parquet(path))  # another cache's table
    assert cache_summary(path)["parquet"].startswith("stale")  # reported; `cache info` writes nothing
    write_cache(path, header(), table(), *arrays())
    pd.testing.assert_frame_equal(pd.read_parquet(sibling_parquet(path)), expected)
    assert cache_summary(path)["parquet"].startswith("matches")


def test_schema_version_1_caches_are_still_read_and_reused(tmp_path):
    """A cache in the version-1 layout (chunked arrays, variable-length strings, no checksums or input digests)
    loads as before, and a new writer with the same identity reuses it instead of recomputing."""
    import io

    path, (x, lg) = tmp_path / "old.h5", arrays()
    meta = table().assign(status="ok", error="")
    blob = io.BytesIO()
    meta.to_parquet(blob, index=False)
    blob = np.frombuffer(blob.getvalue(), np.uint8)
    with h5py.File(path, "w") as h5:  # the layout the version-1 writer produced
        h5.attrs["zsar_schema_version"] = 1
        h5.attrs["header"] = header().to_json()
        h5.attrs["zsar_version"] = "0.1.0"
        h5.attrs["created"] = "2026-11-01T00:00:00+00:00"
        h5.create_dataset("embeddings", data=x, chunks=(20, 8))
        h5.create_dataset("logits", data=lg)
        h5.create_dataset("row_status", data=np.ones(20, np.int8))
        h5.create_dataset("row_error", data=np.array([""] * 20, dtype=object), dtype=h5py.string_dtype())
        h5.create_dataset("sample_id", data=np.array(meta["sample_id"].tolist(), dtype=object),
                          dtype=h5py.string_dtype())
        h5.create_dataset("metadata_parquet", data=blob)
        h5.attrs["metadata_sha256"] = hashlib.sha256(blob.tobytes()).hexdigest()
        h5.attrs["fingerprint"] = compute_fingerprint(h5, header().identity())
    old = FeatureCache(path)
    np.testing.assert_array_equal(old.load().embeddings, x)
    assert old.verify_all(fingerprint=True) == {"rows_checked": 0, "checksums": False, "fingerprint_checked": True}
    assert cache_summary(path)["schema_version"] == 1
    with CacheWriter(path, header(), table()) as writer:
        assert writer.finished and writer.pending_rows().size == 0


def test_an_interrupted_overwrite_resumes_with_overwrite(tmp_path):
    path, (x, lg) = tmp_path / "c.h5", arrays()
    write_cache(path, header(), table(), x, lg)
    with CacheWriter(path, header(), table(), overwrite=True) as writer:  # replacing it, then interrupted
        writer.write(np.arange(12), x[:12] + 1, lg[:12])
    with CacheWriter(path, header(), table()) as again:  # without overwrite: the finished cache, untouched
        assert again.finished
    assert partial_path(path).exists()
    with CacheWriter(path, header(), table(), overwrite=True) as writer:
        assert writer.pending_rows().tolist() == list(range(12, 20))
        writer.write(writer.pending_rows(), x[12:] + 1, lg[12:])
        writer.finalize()
    np.testing.assert_array_equal(FeatureCache(path).load().embeddings, x + 1)
    assert not partial_path(path).exists()


def test_values_that_overflow_the_stored_dtype_are_refused(tmp_path):
    x, lg = arrays()
    x[3, 1] = 1e5  # finite in float32, inf in float16
    writer = CacheWriter(tmp_path / "c.h5", header(dtype="float16"), table())
    with pytest.raises(ZsarError, match=r"NaN or inf \(as float16\) for samples \['s003'\]"):
        writer.write(np.arange(20), x, lg)
    with pytest.raises(ZsarError, match="NaN or inf embeddings"):
        writer.check_outputs(x[3:4], lg[3:4])
    writer.check_outputs(x[:3], lg[:3])
    writer.close()


def test_a_prototype_file_is_named_as_such(tmp_path):
    from zsar.features import ClassPrototypes, save_prototypes

    path = tmp_path / "p.h5"
    save_prototypes(path, [ClassPrototypes(class_ids=np.arange(2), class_names=["a", "b"],
                                           vectors=np.eye(2, 4, dtype=np.float32), variant="name",
                                           texts=[["a"], ["b"]], text_model="m")])
    with pytest.raises(ZsarError, match="class prototype file"):
        FeatureCache(path)


def test_a_cache_of_other_synthetic_settings_is_refused_not_reused(tmp_path):
    from zsar.datasets.synthetic import SyntheticConfig, synthetic_source
    from zsar.extract.skeleton import extract_skeleton_stats

    small = dict(num_subjects=3, repetitions=1, test_subjects=1)
    path = extract_skeleton_stats(synthetic_source(SyntheticConfig(**small)), tmp_path / "c.h5", progress=False)
    assert extract_skeleton_stats(synthetic_source(SyntheticConfig(**small)), path, progress=False) == path
    with pytest.raises(ZsarError, match="computed from other inputs: the input data"):
        extract_skeleton_stats(synthetic_source(SyntheticConfig(**small, seed=9)), path, progress=False)
