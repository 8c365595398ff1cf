from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads import build_head, load_head
from zsar.heads.configs import PRESETS, SADVAEConfig
from zsar.heads.sadvae import SADVAEHead, train_sadvae
from zsar.heads.sadvae_model import (
    LoopSettings,
    SADVAENetwork,
    Schedule,
    encode_batch,
    reference_step,
    sadvae_loss,
)


def _toy(n=160, dx=12, dy=10, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.random((classes, dx)).astype(np.float32) * 2
    x = np.maximum(centres[labels] + 0.3 * rng.standard_normal((n, dx)).astype(np.float32), 0)
    text = F.normalize(torch.from_numpy(rng.standard_normal((classes, dy)).astype(np.float32)), dim=1)
    return torch.from_numpy(x), text, torch.from_numpy(labels)


def _naive_train(net, x, text, labels, settings, generator):
    """The released code's shape: every loss term every iteration, the discriminator loss even when its
    weight is zero, plain (unfused, non-foreach) Adam."""
    n = x.shape[0]
    steps = n // settings.batch_size
    vae_opt = torch.optim.Adam(net.vae_parameters(), lr=settings.lr, foreach=False)
    dis_opt = torch.optim.Adam(net.discriminator.parameters(), lr=settings.lr, foreach=False)
    full = net.latent + net.style
    for epoch in range(settings.epochs):
        order = torch.randperm(n, generator=generator)[: steps * settings.batch_size].view(steps, -1)
        noise_x = torch.randn(steps, settings.batch_size, 1 if settings.scalar_noise else full, generator=generator)
        noise_y = torch.randn(steps, settings.batch_size, 1 if settings.scalar_noise else net.latent,
                              generator=generator)
        for i in range(steps):
            xb, yb = x[order[i]], text[labels[order[i]]]
            w = Schedule.at(epoch, i, steps)
            lat = encode_batch(net, xb, yb, noise_x[i], noise_y[i])
            shuffles = torch.stack([torch.randperm(settings.batch_size, generator=generator) for _ in range(4)]) \
                if i % settings.dis_step == 0 else None
            reference_step(net, xb, yb, lat, w, shuffles, vae_opt, dis_opt)


def test_schedule_matches_the_published_formulas():
    n = 1000
    assert Schedule.at(0, 500, n) == Schedule(0.0, 0.0, 0.0)
    last = Schedule.at(5, n - 1, n)
    assert last.kl_skeleton == pytest.approx(0.1 * (n - 1 - 588) / 1765) and 0.02 < last.kl_skeleton < 0.025
    assert last.kl_text == pytest.approx(0.1 * (n - 1 - 800) / 1765) and last.cross == 1.0
    assert Schedule.at(1, n - 1, n).kl_text == 0.0  # the TC / text KL weight starts at the third epoch
    assert Schedule.at(2, 800, n).cross == 0.0 and Schedule.at(2, 801, n).cross == 1.0


NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
FAST_LOOPS = [pytest.param("cpu", True, id="cpu"),
              pytest.param("cuda", True, id="cuda-graphs", marks=NEEDS_CUDA),
              pytest.param("cuda", False, id="cuda-eager", marks=NEEDS_CUDA)]


@pytest.mark.parametrize("device, cuda_graph", FAST_LOOPS)
@pytest.mark.parametrize("scalar_noise", [False, True])
def test_fast_loop_equals_the_naive_loop(scalar_noise, device, cuda_graph):
    """Skipped zero-weight terms, the zero-gradient discriminator steps and fused Adam change nothing; nor do
    a GPU and the CUDA-graph replay of the iterations."""
    x, text, labels = _toy()
    settings = LoopSettings(epochs=3, batch_size=16, lr=1e-3, dis_step=3, scalar_noise=scalar_noise,
                            cuda_graph=cuda_graph)
    nets = []
    for fast in (True, False):
        torch.manual_seed(0)
        net = SADVAENetwork(x.shape[1], text.shape[1], latent=6, style=2)
        generator = torch.Generator().manual_seed(1)
        if fast:
            on = torch.device(device)
            net.to(on)
            train_sadvae(net, x.to(on), text.to(on), labels.to(on), settings, generator)
            net.cpu()
        else:
            _naive_train(net, x, text, labels, settings, generator)
        nets.append(net.state_dict())
    for name in nets[0]:
        torch.testing.assert_close(nets[0][name], nets[1][name], atol=2e-5, rtol=1e-4, msg=name)
    # the discriminator was trained in the third epoch (b_t > 0) and not in the first two
    assert not torch.equal(nets[0]["discriminator.0.weight"], SADVAENetwork(12, 10, 6, 2).discriminator[0].weight)


def test_skipped_terms_have_zero_gradient_when_their_weight_is_zero():
    x, text, labels = _toy(n=32)
    torch.manual_seed(0)
    net = SADVAENetwork(x.shape[1], text.shape[1], latent=6, style=2)
    noise = torch.randn(32, 8), torch.randn(32, 6)
    for w in (Schedule(0.0, 0.0, 0.0), Schedule(0.01, 0.0, 1.0), Schedule(0.02, 0.01, 1.0)):
        grads = []
        for skip in (True, False):
            net.zero_grad()
            lat = encode_batch(net, x, text[labels], *noise)
            sadvae_loss(net, x, text[labels], lat, w, skip_zero_terms=skip).backward()
            grads.append([p.grad.clone() for p in net.vae_parameters()])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b)


def test_presets_and_explicit_values():
    cfg = SADVAEConfig(preset="ntu60_synse")
    assert [cfg.setting(k) for k in ("latent", "style", "lr", "batch_size", "dis_step", "epochs")] == \
        [160, 8, 3.389e-5, 32, 5, 10]
    assert SADVAEConfig(preset="pku51_random", batch_size=16).setting("batch_size") == 16
    assert set(PRESETS) >= {"ntu60_synse", "ntu120_synse", "ntu60_random", "ntu120_random", "pku51_random"}
    with pytest.raises(ZsarError, match="unknown preset"):
        SADVAEConfig(preset="ntu61")
    with pytest.raises(ZsarError, match="positive"):
        SADVAEConfig(lr=-1.0)


def _prototypes(text: torch.Tensor) -> ClassPrototypes:
    k = text.shape[0]
    return ClassPrototypes(np.arange(k), [f"c{i}" for i in range(k)], text.numpy(), "test", [[""]] * k, "none")


def test_head_monitor_sees_every_epoch_and_epochs_replay_exactly(tmp_path):
    x, text, labels = _toy(n=96)
    protos = _prototypes(text)
    params = {"epochs": 3, "latent": 6, "style": 2, "batch_size": 16, "latents_per_class": 50,
              "classifier_steps": 20}
    seen = []
    head = build_head("sadvae", params)
    snapshots = []
    head.fit(x.numpy(), labels.numpy(), protos, seed=3,
             monitor=lambda h: (seen.append(h.score(x.numpy(), protos)), snapshots.append(h.snapshot())))
    assert len(seen) == 3
    # training for 2 epochs gives exactly the head the monitor saw after epoch 2 (schedules restart per epoch)
    short = build_head("sadvae", {**params, "epochs": 2})
    short.fit(x.numpy(), labels.numpy(), protos, seed=3)
    np.testing.assert_array_equal(short.score(x.numpy(), protos), seen[1])
    np.testing.assert_array_equal(load_head(head.save(tmp_path / "h")).score(x.numpy(), protos), seen[2])
    # the per-class-set classifier is reused for the same state and classes, and retrained for a new state
    np.testing.assert_array_equal(head.score(x.numpy(), protos), seen[2])
    assert not np.array_equal(seen[0], seen[2])
    two = protos.subset(protos.class_ids[:2])
    assert head.score(x.numpy(), two).shape == (len(x), 2)
    np.testing.assert_array_equal(head.score(x.numpy(), two), load_head(tmp_path / "h").score(x.numpy(), two))
    # the protocol's batched scoring of all epochs (one stacked classifier) gives each epoch's own scores
    batched = SADVAEHead.score_snapshots(snapshots, x.numpy(), protos)
    for one, each in zip(batched, seen):
        np.testing.assert_allclose(one, each, atol=1e-5)


def test_head_bad_input():
    x, text, labels = _toy(n=64)
    protos = _prototypes(text)
    head = build_head("sadvae", {"epochs": 1, "latent": 4, "style": 2, "classifier_steps": 5})
    with pytest.raises(ZsarError, match="not fitted"):
        head.score(x.numpy(), protos)
    bad = x.numpy().copy()
    bad[0, 0] = np.nan
    with pytest.raises(ZsarError, match="NaN"):
        head.fit(bad, labels.numpy(), protos)
    with pytest.raises(ZsarError, match="no text prototype"):
        head.fit(x.numpy(), labels.numpy(), protos.subset([0, 1, 2]).subset([0, 1]))
    head.fit(x.numpy(), labels.numpy(), protos)
    with pytest.raises(ZsarError, match="fitted on 12-d"):
        head.score(x.numpy()[:, :5], protos)
    wrong_text = ClassPrototypes(np.arange(4), list("abcd"), np.eye(4, 7, dtype=np.float32), "t", [[""]] * 4, "m")
    with pytest.raises(ZsarError, match="7-d"):
        head.score(x.numpy(), wrong_text)
    diverging = build_head("sadvae", {"epochs": 1, "latent": 4, "style": 2, "lr": 1e12})
    with pytest.raises(ZsarError, match="diverged"):
        diverging.fit(x.numpy() * 1e6, labels.numpy(), protos)


def test_rms_text_scaling_feeds_the_text_vae_sqrt_d_times_the_unit_vectors():
    x, text, labels = _toy()
    protos = ClassPrototypes(np.arange(4), list("abcd"), text.numpy(), "prompts", [["t"]] * 4, "toy")
    params = {"epochs": 2, "batch_size": 16, "latents_per_class": 10, "classifier_steps": 5}
    unit, rms = build_head("sadvae", params), build_head("sadvae", {**params, "text_scaling": "rms"})
    torch.testing.assert_close(rms._scaled_text(protos.vectors), unit._scaled_text(protos.vectors) * 10 ** 0.5)
    for head in (unit, rms):
        head.fit(x.numpy(), labels.numpy(), protos, seed=0)
    assert not np.array_equal(unit.score(x.numpy(), protos), rms.score(x.numpy(), protos))
    with pytest.raises(ZsarError, match="text_scaling"):
        build_head("sadvae", {"text_scaling": "big"})
