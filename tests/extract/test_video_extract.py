import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import TINY_VIDEO_CONFIG

from zsar.datasets.video_datasets import folder_source
from zsar.errors import ZsarError
from zsar.features.reader import FeatureCache

pytest.importorskip("mmaction")
pytest.importorskip("av")
from zsar.extract.sharding import Shard  # noqa: E402
from zsar.extract.video import ExtractOptions, extract_video, load_views  # noqa: E402
from zsar.extract.video_encoder import VideoEncoder  # noqa: E402
from zsar.features.merge import merge_shards  # noqa: E402

BROKEN = {"empty": "empty", "not_a_video": "cannot open", "truncated": "cannot open"}


@pytest.fixture(scope="module")
def encoder():
    return VideoEncoder.from_config(TINY_VIDEO_CONFIG, seed=0)


@pytest.fixture(scope="module")
def single(video_folder, encoder, tmp_path_factory):
    """One process, one decoding worker: the cache everything else must equal."""
    out = tmp_path_factory.mktemp("single") / "videos.h5"
    extract_video(folder_source(video_folder), out, encoder, options=ExtractOptions(batch_size=2, num_workers=1),
                  progress=False)
    return FeatureCache(out)


def _arrays(cache: FeatureCache) -> dict:
    with h5py.File(cache.path, "r") as h5:
        return {name: h5[name][:] for name in ("embeddings", "row_status") if name in h5}


def test_broken_videos_become_failed_rows_and_good_ones_match_a_sequential_loop(single, video_folder, encoder):
    meta = single.metadata.set_index("sample_id")
    for stem, message in BROKEN.items():
        row = meta.loc[[s for s in meta.index if s.endswith(stem)][0]]
        assert row["status"] == "failed" and message in row["error"]
    ok = single.load()
    assert len(ok) == 4 and set(ok.metadata["class_name"]) == {"drink", "street"}
    for i, path in enumerate(ok.metadata["source"]):  # the naive path: decode one video, run it, next
        embedding = encoder.features(load_views(video_folder / path, encoder.spec.input)[None])[0][0]
        np.testing.assert_allclose(ok.embeddings[i], embedding, rtol=1e-4, atol=1e-5)


def test_in_process_decoding_gives_the_same_cache(single, video_folder, encoder, tmp_path):
    out = extract_video(folder_source(video_folder), tmp_path / "inproc.h5", encoder,
                        options=ExtractOptions(batch_size=3, num_workers=0), progress=False)
    a, b = _arrays(single), _arrays(FeatureCache(out))
    np.testing.assert_array_equal(a["row_status"], b["row_status"])
    np.testing.assert_allclose(a["embeddings"], b["embeddings"], rtol=1e-4, atol=1e-5)


KILL_SCRIPT = """
import os, signal, sys
from zsar.datasets.video_datasets import folder_source
from zsar.extract.video import ExtractOptions, extract_video
from zsar.extract.video_encoder import VideoEncoder

def kill(done):
    if done >= 2:
        os.kill(os.getpid(), signal.SIGKILL)

encoder = VideoEncoder.from_config(sys.argv[1], seed=0)
extract_video(folder_source(sys.argv[2]), sys.argv[3], encoder, options=ExtractOptions(batch_size=2, num_workers=1),
              progress=False, on_batch=kill)
"""


def test_resume_after_a_killed_run_gives_identical_embeddings(single, video_folder, encoder, tmp_path):
    out = tmp_path / "killed.h5"
    run = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(TINY_VIDEO_CONFIG), str(video_folder), str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-2000:]
    assert not out.exists()
    with h5py.File(str(out) + ".partial", "r") as h5:
        assert 0 < int((h5["row_status"][:] != 0).sum()) < single.num_rows  # some rows made it before the kill
    extract_video(folder_source(video_folder), out, encoder, options=ExtractOptions(batch_size=2, num_workers=1),
                  progress=False)
    a, b = _arrays(single), _arrays(FeatureCache(out))
    np.testing.assert_array_equal(a["row_status"], b["row_status"])
    np.testing.assert_array_equal(a["embeddings"], b["embeddings"])


def test_sharded_extraction_and_merge_equal_single_process(single, video_folder, encoder, tmp_path):
    out = tmp_path / "sharded.h5"
    shards = [extract_video(folder_source(video_folder), out, encoder, shard=Shard(i, 3), progress=False,
                            options=ExtractOptions(batch_size=2, num_workers=0)) for i in range(3)]
    assert [p.name for p in shards] == [f"sharded.shard{i}-of-3.h5" for i in range(3)]
    merged = FeatureCache(merge_shards(list(reversed(shards)), out))
    assert merged.header.shard is None
    assert merged.metadata.drop(columns=["path"], errors="ignore").equals(single.metadata)
    a, b = _arrays(single), _arrays(merged)
    np.testing.assert_array_equal(a["row_status"], b["row_status"])
    np.testing.assert_allclose(a["embeddings"], b["embeddings"], rtol=1e-4, atol=1e-5)

    with pytest.raises(ZsarError, match=r"shards \[1\] of 3 are missing"):
        merge_shards([shards[0], shards[2]], tmp_path / "m1.h5")
    with pytest.raises(ZsarError, match="given twice"):
        merge_shards([shards[0], shards[0], shards[1], shards[2]], tmp_path / "m2.h5")
    other = VideoEncoder.from_config(TINY_VIDEO_CONFIG, seed=1, num_clips=2)
    odd = extract_video(folder_source(video_folder), tmp_path / "odd.h5", other, shard=Shard(1, 3), progress=False,
                        options=ExtractOptions(num_workers=0))
    with pytest.raises(ZsarError, match="another encoder or config"):
        merge_shards([shards[0], odd, shards[2]], tmp_path / "m3.h5")
    with h5py.File(shards[2], "r+") as h5:
        h5["embeddings"][0] = h5["embeddings"][0] + 1
    with pytest.raises(ZsarError, match="fingerprint|checksums") as info:
        merge_shards(shards, tmp_path / "m4.h5")
    assert info.value.path == shards[2]
    assert not (tmp_path / "m4.h5").exists()


def test_unfinished_shard_and_plain_cache_are_refused(single, video_folder, tmp_path):
    with pytest.raises(ZsarError, match="not a shard"):
        merge_shards([single.path], tmp_path / "m.h5")
    (tmp_path / "x.shard0-of-2.h5.partial").write_bytes(b"")
    with pytest.raises(ZsarError, match="unfinished"):
        merge_shards([tmp_path / "x.shard0-of-2.h5"], tmp_path / "m.h5")


def test_shard_arguments():
    assert Shard.parse("2/5") == Shard(2, 5)
    assert Shard(1, 3).rows(8).tolist() == [1, 4, 7]
    for bad in ("5/5", "a/2", "3"):
        with pytest.raises(ZsarError, match="shard"):
            Shard.parse(bad)


@pytest.mark.slow
def test_torchrun_ranks_extract_shards_and_rank0_merges(single, video_folder, tmp_path):
    """Two CPU processes under torchrun (gloo): each writes its shard, rank 0 merges into --out."""
    out = tmp_path / "ddp.h5"
    zsar = Path(sys.executable).with_name("zsar")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", str(zsar), "extract", "video", str(video_folder),
                          "--format", "folders", "--out", str(out), "--config", str(TINY_VIDEO_CONFIG),
                          "--random-weights", "--batch-size", "2", "--num-workers", "0"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "ddp.shard0-of-2.h5").exists() and (tmp_path / "ddp.shard1-of-2.h5").exists()
    a, b = _arrays(single), _arrays(FeatureCache(out))
    np.testing.assert_array_equal(a["row_status"], b["row_status"])
    np.testing.assert_allclose(a["embeddings"], b["embeddings"], rtol=1e-4, atol=1e-5)


def test_a_video_shorter_than_one_clip_is_padded_not_empty(encoder, tmp_path):
    """A 3-frame clip (written here with PyAV) for a 4-frame x interval-4 network: looped frames, a real row."""
    import av

    path = tmp_path / "short" / "c" / "three.mp4"
    path.parent.mkdir(parents=True)
    frames = [np.full((96, 128, 3), 40 * (i + 1), np.uint8) for i in range(3)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    views = load_views(path, encoder.spec.input)
    assert views.shape[:3] == (1, 1, 4)
    brightness = views[0, 0].reshape(4, -1).mean(1)
    assert brightness[0] == pytest.approx(brightness[3], abs=3)  # frame 0 again: indices 0, 1, 2, 0
    out = extract_video(folder_source(tmp_path / "short"), tmp_path / "short.h5", encoder, progress=False,
                        options=ExtractOptions(num_workers=0))
    cache = FeatureCache(out)
    assert cache.metadata["status"].tolist() == ["ok"]
    assert np.abs(cache.load().embeddings).sum() > 0
