import numpy as np
import pytest
import torch
from conftest import TINY_VIDEO_CONFIG

from zsar.errors import ZsarError

pytest.importorskip("mmaction")
from zsar.extract.video_encoder import VideoEncoder  # noqa: E402


@pytest.fixture(scope="module")
def encoder():
    return VideoEncoder.from_config(TINY_VIDEO_CONFIG, pipeline="test", seed=3)


def _views(seed: int, batch: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(batch, 3, 2, 4, 64, 64, 3), dtype=np.uint8)  # [B, crops, clips, T, H, W, 3]


def test_features_equal_mmaction2_recognizer(encoder):
    """Normalisation, backbone and head as mmaction2's data preprocessor + recognizer compute them."""
    from mmaction.structures import ActionDataSample

    views = _views(0)
    embeddings, logits, per_view = encoder.features(views)
    assert embeddings.shape == (2, 64) and logits.shape == (2, 5) and per_view.shape == (2, 6, 64)
    model = encoder.network
    for b in range(2):
        inputs = torch.from_numpy(views[b].reshape(6, 4, 64, 64, 3)).permute(0, 4, 1, 2, 3).contiguous()
        data = model.data_preprocessor({"inputs": [inputs], "data_samples": [ActionDataSample()]}, training=False)
        with torch.no_grad():
            feats, _ = model.extract_feat(data["inputs"], test_mode=True)  # [views, C, T, H, W]
            scores = model.cls_head(feats)  # [views, classes]
        np.testing.assert_allclose(logits[b], scores.mean(0).numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(per_view[b], feats.mean(dim=(2, 3, 4)).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(embeddings, per_view.mean(1), rtol=1e-6)


def test_2d_recognizer_equals_mmaction2(tmp_path):
    """TSM: the sampled frames of a crop are the segments of one view, as mmaction2's Recognizer2D takes them."""
    from mmaction.structures import ActionDataSample

    tsm = VideoEncoder.from_config(TINY_VIDEO_CONFIG.with_name("tiny_tsm.py"), seed=0)
    assert tsm.views_per_video == 1 and tsm.embedding_dim == 512
    views = np.random.default_rng(0).integers(0, 256, size=(2, 1, 4, 1, 64, 64, 3), dtype=np.uint8)
    embeddings, logits, per_view = tsm.features(views)
    assert per_view.shape == (2, 1, 512)
    model = tsm.network
    for b in range(2):
        inputs = torch.from_numpy(views[b].reshape(4, 64, 64, 3)).permute(0, 3, 1, 2).contiguous()
        data = model.data_preprocessor({"inputs": [inputs], "data_samples": [ActionDataSample()]}, training=False)
        with torch.no_grad():
            feats, options = model.extract_feat(data["inputs"], test_mode=True)
            scores = model.cls_head(feats, **options)
        np.testing.assert_allclose(logits[b], scores[0].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(embeddings[b], feats.mean(dim=(2, 3)).mean(0).numpy(), rtol=1e-4, atol=1e-5)


def test_checkpoint_round_trip_and_mismatch(encoder, tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": encoder.network.state_dict(), "meta": {}}, path)
    loaded = VideoEncoder.from_config(TINY_VIDEO_CONFIG, path, pipeline="test", seed=99)
    views = _views(1)
    for a, b in zip(encoder.features(views), loaded.features(views)):
        np.testing.assert_array_equal(a, b)
    state = {k: v for k, v in encoder.network.state_dict().items() if not k.startswith("backbone.layer4")}
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ZsarError, match="does not fit the config") as info:
        VideoEncoder.from_config(TINY_VIDEO_CONFIG, tmp_path / "partial.pth")
    assert info.value.path == tmp_path / "partial.pth"
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ZsarError, match="cannot read the checkpoint"):
        VideoEncoder.from_config(TINY_VIDEO_CONFIG, tmp_path / "junk.pth")
    with pytest.raises(ZsarError, match="not found"):
        VideoEncoder.from_config(TINY_VIDEO_CONFIG, tmp_path / "absent.pth")


def test_head_size_comes_from_the_checkpoint(encoder, tmp_path):
    other = VideoEncoder.from_config(TINY_VIDEO_CONFIG, num_classes=7)
    torch.save(other.network.state_dict(), tmp_path / "seven.pth")
    loaded = VideoEncoder.from_config(TINY_VIDEO_CONFIG, tmp_path / "seven.pth")
    assert loaded.num_classes == 7 and loaded.features(_views(2))[1].shape == (2, 7)
    with pytest.raises(ZsarError, match="3 head class names"):
        VideoEncoder.from_config(TINY_VIDEO_CONFIG, tmp_path / "seven.pth", head_classes=("a", "b", "c"))


def test_precision_options(encoder):
    with pytest.raises(ZsarError, match="GPU"):
        VideoEncoder.from_config(TINY_VIDEO_CONFIG, precision="fp16")
    with pytest.raises(ZsarError, match="precision"):
        VideoEncoder.from_config(TINY_VIDEO_CONFIG, precision="int8")
    bf16 = VideoEncoder.from_config(TINY_VIDEO_CONFIG, precision="bf16", pipeline="test", seed=3)
    reference, low = encoder.features(_views(4))[0], bf16.features(_views(4))[0]
    assert low.dtype == np.float32
    cosine = (reference * low).sum(1) / np.linalg.norm(reference, axis=1) / np.linalg.norm(low, axis=1)
    assert cosine.min() > 0.98


def test_non_3d_recognizer_is_refused():
    with pytest.raises(ZsarError, match="RecognizerGCN"):
        VideoEncoder.from_config("stgcn")


@pytest.mark.slow
@pytest.mark.parametrize("name,dim", [("slowonly", 2048), ("videomaev2-small", 384), ("tsn", 2048)])
def test_builtin_configs_build_without_downloads(name, dim):
    encoder = VideoEncoder.from_config(name, num_classes=4)
    assert encoder.embedding_dim == dim
    assert encoder.spec.input.crop_size == 224
