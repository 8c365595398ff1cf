from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F

from zsar.errors import ZsarError
from zsar.heads.segmentation_models import (
    MSTCN,
    DilatedResidualLayer,
    TemporalStage,
    TextSegmentationModel,
    frame_text_scores,
    frame_to_text_loss,
    mstcn_loss,
    smoothing_loss,
    symmetric_frame_text_loss,
    text_to_frame_loss,
)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _toy_video(t_per_segment=(20, 25, 15), dim=6, noise=0.5, seed=0):
    """Features [1, dim, T] = class mean + noise, labels [1, T] for a 3-segment video A B C."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(len(t_per_segment), dim, generator=g)
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(t_per_segment)])
    x = means[labels].T + noise * torch.randn(dim, len(labels), generator=g)
    return x[None], labels[None]


def _naive_tmse(logits, mask, detach_previous=True):
    """Frame by frame over [B, C, T] logits: mean over (B, C, T-1) of the clamped squared log-prob difference."""
    b, c, t = logits.shape
    total = logits.new_zeros(())
    for i in range(1, t):
        now = F.log_softmax(logits[:, :, i], dim=1)
        before = F.log_softmax(logits[:, :, i - 1], dim=1)
        if detach_previous:
            before = before.detach()
        total = total + (torch.clamp((now - before) ** 2, 0, 16) * mask[:, :, i]).sum()
    return total / (b * c * (t - 1))


# -- MS-TCN modules ------------------------------------------------------------------------------------------------
def test_one_stage_with_ten_layers_sees_2047_frames():
    # positive weights, biases and inputs keep every ReLU active, so every path of the field carries the bump
    torch.manual_seed(0)
    stage = TemporalStage(2, 4, 10, 3, dropout=0.5).double().eval()
    with torch.no_grad():
        for param in stage.parameters():
            param.uniform_(0.2, 0.5)
    t, p = 4300, 2150
    x = torch.rand(1, 2, t, dtype=torch.float64)
    bumped = x.clone()
    bumped[:, :, p] += 10.0
    with torch.no_grad():
        base, _ = stage(x)
        moved, _ = stage(bumped)
    changed = torch.nonzero((moved != base).any(dim=1)[0]).flatten().tolist()
    assert changed == list(range(p - 1023, p + 1024))
    assert len(changed) == 2047 == 1 + 2 * (2 ** 10 - 1)


def test_dilated_layer_is_residual_and_masked():
    torch.manual_seed(1)
    layer = DilatedResidualLayer(3, dilation=4, dropout=0.5).eval()
    x = torch.randn(2, 3, 30)
    mask = torch.ones(2, 1, 30)
    mask[1, :, 20:] = 0
    with torch.no_grad():
        for p in layer.conv_1x1.parameters():
            p.zero_()  # the branch adds nothing: the output is the (masked) input
        torch.testing.assert_close(layer(x, mask), x * mask)
    assert layer.conv_dilated.dilation == (4,) and layer.conv_dilated.padding == (4,)


def test_mstcn_output_shape_and_later_stages_read_masked_class_probabilities():
    torch.manual_seed(14)
    model = MSTCN(in_dim=7, n_classes=5, stages=3, layers=4, channels=8).eval()
    assert [s.conv_in.in_channels for s in model.stages] == [7, 5, 5]
    mask = torch.ones(2, 1, 33)
    mask[0, :, 20:] = 0
    inputs = []
    hooks = [s.register_forward_pre_hook(lambda _, args: inputs.append(args[0])) for s in model.stages]
    with torch.no_grad():
        out = model(torch.randn(2, 7, 33), mask)
    for hook in hooks:
        hook.remove()
    assert out.shape == (3, 2, 5, 33)
    for k in (1, 2):
        torch.testing.assert_close(inputs[k], F.softmax(out[k - 1], dim=1) * mask)


def test_padded_frames_never_reach_valid_frames_of_the_model():
    torch.manual_seed(2)
    model = MSTCN(in_dim=4, n_classes=3, stages=3, layers=5, channels=8).eval()
    short, long = torch.randn(1, 4, 40), torch.randn(1, 4, 70)
    batch = torch.cat([torch.cat([short, 100 * torch.randn(1, 4, 30)], dim=2), long])
    mask = torch.ones(2, 1, 70)
    mask[0, :, 40:] = 0
    with torch.no_grad():
        together = model(batch, mask)
        alone_short, alone_long = model(short), model(long)
    torch.testing.assert_close(together[:, 0, :, :40], alone_short[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together[:, 1], alone_long[:, 0], atol=1e-5, rtol=1e-5)
    assert torch.all(together[:, 0, :, 40:] == 0)


# -- MS-TCN loss ---------------------------------------------------------------------------------------------------
def test_tmse_is_zero_for_logits_constant_in_time():
    per_class = torch.tensor([3.0, -1.0, 0.5, 7.0])
    logits = per_class[None, :, None].expand(2, 4, 25).clone()
    assert float(smoothing_loss(logits, class_dim=1)) == 0.0
    # log_softmax makes a per-frame shift of all classes irrelevant too
    shifted = logits + torch.linspace(-5, 5, 25)[None, None, :]
    assert float(smoothing_loss(shifted, class_dim=1)) == pytest.approx(0.0, abs=1e-10)
    assert float(smoothing_loss(torch.randn(2, 4, 25), class_dim=1)) > 0


def test_tmse_gradient_does_not_flow_into_the_previous_frame():
    torch.manual_seed(3)
    base = 4 * torch.randn(2, 5, 12, dtype=torch.float64)  # large enough that some differences hit the clamp
    mask = torch.ones(2, 1, 12, dtype=torch.float64)
    mask[1, :, 8:] = 0

    def grad(fn):
        z = base.clone().requires_grad_(True)
        fn(z).backward()
        return z.grad

    ours = grad(lambda z: smoothing_loss(z, mask, class_dim=1))
    torch.testing.assert_close(ours, grad(lambda z: _naive_tmse(z, mask, detach_previous=True)))
    no_stop = grad(lambda z: _naive_tmse(z, mask, detach_previous=False))
    assert not torch.allclose(ours, no_stop)
    torch.testing.assert_close(grad(lambda z: smoothing_loss(z, mask, class_dim=1, detach_previous=False)), no_stop)
    # the value is the same either way, and clamped differences were present
    assert float(smoothing_loss(base, mask, class_dim=1)) == pytest.approx(float(_naive_tmse(base, mask)))
    assert float((F.log_softmax(base, 1).diff(dim=2) ** 2).max()) > 16


def test_smoothing_loss_takes_frame_text_scores_channels_last():
    torch.manual_seed(4)
    scores = torch.randn(2, 15, 6)
    mask = torch.ones(2, 15)
    mask[0, 10:] = 0
    torch.testing.assert_close(smoothing_loss(scores, mask), smoothing_loss(scores.transpose(1, 2), mask[:, None],
                                                                            class_dim=1))


def test_mstcn_loss_is_stage_sum_of_ce_and_weighted_tmse():
    torch.manual_seed(5)
    logits = torch.randn(3, 2, 4, 20)
    labels = torch.randint(0, 4, (2, 20))
    labels[1, 14:] = -100
    mask = (labels != -100).float()[:, None]
    want = sum(F.cross_entropy(z.transpose(1, 2)[labels != -100], labels[labels != -100])
               + 0.15 * _naive_tmse(z, mask) for z in logits)
    torch.testing.assert_close(mstcn_loss(logits, labels, mask), want)
    torch.testing.assert_close(mstcn_loss(logits, labels, mask, smooth_weight=0.0),
                               sum(F.cross_entropy(z, labels, ignore_index=-100) for z in logits))


def test_padded_frames_do_not_change_the_loss():
    torch.manual_seed(6)
    tv, tp = 30, 45
    video = torch.randn(2, 1, 4, tv)  # [stages, B, C, T]
    labels = torch.randint(0, 4, (1, tv))
    padded_labels = torch.cat([labels, torch.full((1, tp - tv), -100)], dim=1)
    mask = torch.zeros(1, 1, tp)
    mask[..., :tv] = 1

    def padded(garbage_seed):
        g = torch.Generator().manual_seed(garbage_seed)
        return torch.cat([video, 50 * torch.randn(2, 1, 4, tp - tv, generator=g)], dim=3)

    loss_a = mstcn_loss(padded(0), padded_labels, mask)
    loss_b = mstcn_loss(padded(1), padded_labels, mask)
    torch.testing.assert_close(loss_a, loss_b)
    # against the unpadded video: CE over the same frames; the T-MSE mean counts the padded positions as zeros
    ce = sum(F.cross_entropy(z, labels) for z in video)
    tmse = sum(smoothing_loss(z, class_dim=1) for z in video)
    torch.testing.assert_close(loss_a, ce + 0.15 * tmse * (tv - 1) / (tp - 1))


def test_padded_batch_through_the_model_gives_the_same_loss_whatever_the_padding():
    torch.manual_seed(7)
    model = MSTCN(in_dim=3, n_classes=4, stages=2, layers=4, channels=8).eval()
    x, labels = torch.randn(2, 3, 50), torch.randint(0, 4, (2, 50))
    labels[0, 35:] = -100
    mask = (labels != -100).float()[:, None]
    other = x.clone()
    other[0, :, 35:] = 1e3 * torch.randn(3, 15)
    with torch.no_grad():
        torch.testing.assert_close(mstcn_loss(model(x, mask), labels, mask), mstcn_loss(model(other, mask), labels,
                                                                                         mask))


def test_a_tiny_mstcn_overfits_a_three_segment_video():
    torch.manual_seed(8)
    x, labels = _toy_video()
    mask = torch.ones(1, 1, x.shape[-1])
    model = MSTCN(in_dim=x.shape[1], n_classes=3, stages=2, layers=4, channels=16, dropout=0.1)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    start = time.perf_counter()
    for _ in range(300):
        optimiser.zero_grad()
        mstcn_loss(model(x, mask), labels, mask).backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        prediction = model(x, mask)[-1].argmax(dim=1)
    assert torch.equal(prediction, labels)
    assert time.perf_counter() - start < 10


# -- text-space segmentation ---------------------------------------------------------------------------------------
def test_text_model_embeddings_are_unit_on_valid_frames_and_zero_on_padding():
    torch.manual_seed(9)
    model = TextSegmentationModel(in_dim=5, text_dim=12, stages=3, layers=3, channels=8).eval()
    mask = torch.ones(2, 1, 40)
    mask[1, :, 25:] = 0
    out = model(torch.randn(2, 5, 40), mask)
    assert len(out) == 3 and all(e.shape == (2, 40, 12) for e in out)
    for e in out:
        norms = e.norm(dim=-1)
        torch.testing.assert_close(norms[mask[:, 0] == 1], torch.ones(int(mask.sum())))
        assert torch.all(norms[mask[:, 0] == 0] == 0)
    # class-agnostic backbone: later stages read the previous stage's hidden features
    assert [s.conv_in.in_channels for s in model.stages] == [5, 8, 8]
    assert all(s.conv_out is None for s in model.stages)


def test_text_model_padding_invariance():
    torch.manual_seed(10)
    model = TextSegmentationModel(in_dim=4, text_dim=6, stages=2, layers=4, channels=8).eval()
    short = torch.randn(1, 4, 30)
    batch = torch.cat([short, 100 * torch.randn(1, 4, 20)], dim=2)
    mask = torch.ones(1, 1, 50)
    mask[..., 30:] = 0
    with torch.no_grad():
        for a, b in zip(model(batch, mask), model(short)):
            torch.testing.assert_close(a[:, :30], b, atol=1e-5, rtol=1e-5)


def test_logit_scale_starts_at_one_over_0_07_and_is_clamped_at_100():
    model = TextSegmentationModel(in_dim=3, text_dim=4, stages=1, layers=1, channels=4)
    assert float(model.logit_scale.detach()) == pytest.approx(math.log(1 / 0.07))
    assert float(model.scale().detach()) == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert float(model.scale().detach()) == pytest.approx(100.0, rel=1e-5)
    e, text = F.normalize(torch.randn(1, 3, 4), dim=-1), F.normalize(torch.randn(2, 4), dim=-1)
    torch.testing.assert_close(model.scores(e, text), 100.0 * torch.einsum("bte,ce->btc", e, text))


def test_projection_head_layout():
    model = TextSegmentationModel(in_dim=3, text_dim=10, stages=1, layers=1, channels=6, proj_dim=7)
    kinds = [type(m).__name__ for m in model.projection]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "Dropout", "Linear"]
    assert model.projection[0].in_features == 6 and model.projection[0].out_features == 7
    assert model.projection[3].p == 0.1 and model.projection[4].out_features == 10
    assert TextSegmentationModel(3, 10, stages=1, layers=1, channels=6).projection[0].out_features == 10


def _naive_symmetric(e, labels, text, scale):
    """Video by video, frame by frame and class by class, in floats."""
    e, labels, text = e.double().numpy(), labels.numpy(), text.double().numpy()
    per_video = []
    for b in range(len(e)):
        frames = [t for t in range(e.shape[1]) if labels[b, t] != -100]
        if not frames:
            continue
        s = {(t, c): scale * float(e[b, t] @ text[c]) for t in frames for c in range(len(text))}
        f2t = []
        for t in frames:
            f2t.append(math.log(sum(math.exp(s[t, c]) for c in range(len(text)))) - s[t, labels[b, t]])
        t2f = []
        for c in range(len(text)):
            own = [t for t in frames if labels[b, t] == c]
            if not own:
                t2f.append(0.0)
                continue
            every = math.log(sum(math.exp(s[t, c]) for t in frames))
            t2f.append(sum(every - s[t, c] for t in own) / len(own))
        per_video.append(sum(f2t) / len(f2t) + sum(t2f) / len(t2f))
    return sum(per_video) / len(per_video)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_symmetric_loss_against_a_naive_loop(seed):
    torch.manual_seed(seed)
    e = F.normalize(torch.randn(3, 9, 5), dim=-1)
    text = F.normalize(torch.randn(4, 5), dim=-1)
    labels = torch.randint(0, 4, (3, 9))
    labels[0][labels[0] == 2] = 1  # class 2 absent from video 0
    labels[1, 6:] = -100  # padding
    labels[2, 0] = -100  # an ignored frame inside the video
    got = symmetric_frame_text_loss(e, labels, text, 7.5)
    assert float(got) == pytest.approx(_naive_symmetric(e, labels, text, 7.5), rel=1e-5)
    torch.testing.assert_close(got, frame_to_text_loss(e, labels, text, 7.5) + text_to_frame_loss(e, labels, text,
                                                                                                   7.5))


def test_videos_without_valid_frames_are_left_out_and_all_empty_raises():
    torch.manual_seed(11)
    e, text = F.normalize(torch.randn(2, 6, 4), dim=-1), F.normalize(torch.randn(3, 4), dim=-1)
    labels = torch.randint(0, 3, (2, 6))
    empty = labels.clone()
    empty[1] = -100
    torch.testing.assert_close(symmetric_frame_text_loss(e, empty, text, 5.0),
                               symmetric_frame_text_loss(e[:1], labels[:1], text, 5.0))
    with pytest.raises(ZsarError):
        symmetric_frame_text_loss(e, torch.full((2, 6), -100), text, 5.0)
    with pytest.raises(ZsarError):
        symmetric_frame_text_loss(e, torch.full((2, 6), 3), text, 5.0)  # only 3 text rows


def test_text_to_frame_counts_absent_classes_as_zero():
    torch.manual_seed(12)
    e = F.normalize(torch.randn(1, 10, 6), dim=-1)
    text = F.normalize(torch.randn(3, 6), dim=-1).requires_grad_(True)
    labels = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 0, 0, -100]])  # class 2 absent
    with_absent = text_to_frame_loss(e, labels, text, 10.0)
    present_only = text_to_frame_loss(e, labels, text[:2], 10.0)
    torch.testing.assert_close(with_absent, present_only * 2 / 3)
    with_absent.backward()
    assert torch.all(text.grad[2] == 0) and torch.any(text.grad[:2] != 0)


def test_text_to_frame_softmax_runs_over_the_video_frames_not_the_classes():
    # one class and one frame labelled with it among identical frames: only the frame count matters
    e = F.normalize(torch.ones(1, 4, 3), dim=-1)
    text = F.normalize(torch.randn(2, 3), dim=-1)
    labels = torch.tensor([[0, 1, 1, 1]])
    # per class: -mean log(1/4) over its frames = log 4, for both classes
    assert float(text_to_frame_loss(e, labels, text, 3.0)) == pytest.approx(math.log(4), rel=1e-6)


def test_frame_text_scores():
    e, text = torch.randn(2, 3, 4), torch.randn(5, 4)
    torch.testing.assert_close(frame_text_scores(e, text, 2.5), 2.5 * e @ text.T)


def test_text_model_learns_a_toy_video_through_the_symmetric_loss():
    torch.manual_seed(13)
    x, labels = _toy_video(seed=1)
    mask = torch.ones(1, 1, x.shape[-1])
    text = F.normalize(torch.randn(3, 8), dim=-1)
    model = TextSegmentationModel(in_dim=x.shape[1], text_dim=8, stages=2, layers=3, channels=16, dropout=0.1)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(150):
        optimiser.zero_grad()
        loss = sum(symmetric_frame_text_loss(e, labels, text, model.scale())
                   + 0.15 * smoothing_loss(model.scores(e, text), mask) for e in model(x, mask))
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        prediction = model.scores(model(x, mask)[-1], text).argmax(dim=-1)
    assert torch.equal(prediction, labels)
    assert model.logit_scale.grad is not None


def test_mstcn_rejects_zero_stages():
    with pytest.raises(ZsarError):
        MSTCN(3, 2, stages=0)
    with pytest.raises(ZsarError):
        TextSegmentationModel(3, 2, stages=0)

