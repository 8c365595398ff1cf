"""FS-VAE (zsar/heads/fs_vae.py, fs_vae_model.py, fs_vae_dct.py): the DCT band re-weighting, the cyclical
schedules, the calibrated alignment, the sampler, the classifier's data, and the fast training loop against the
step-by-step one. The behaviour it shares with CADA-VAE (refit = snapshot, save / load, toy zero-shot problem,
errors) is tested in test_latent_vae_head.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F
from vae_toy import TINY, toy_problem

from zsar.heads import build_head
from zsar.heads.configs import FSVAEConfig
from zsar.heads.fs_vae_dct import BandReweighting, dct_matrix
from zsar.heads.fs_vae_model import (
    CycleDraws,
    CycleSchedule,
    FSVAENetwork,
    calibrated_alignment,
    fsvae_loss,
    loss_from_posteriors,
    train_fsvae,
)
from zsar.heads.torch_device import torch_threads
from zsar.heads.vae_parts import reparameterise


def test_the_dct_is_the_orthonormal_dct_ii_and_round_trips():
    x = torch.randn(3, 20, generator=torch.Generator().manual_seed(0))
    basis = dct_matrix(20)
    torch.testing.assert_close(basis @ basis.T, torch.eye(20), atol=1e-6, rtol=0)
    np.testing.assert_allclose((x @ basis.T).numpy(), scipy.fft.dct(x.numpy(), norm="ortho", axis=1), atol=1e-5)
    module = BandReweighting(20)
    torch.testing.assert_close(module.coefficients(x) @ module.basis, x, atol=1e-5, rtol=0)  # IDCT(DCT(x)) = x


@pytest.mark.parametrize("dim", [64, 256])
def test_the_module_is_the_identity_at_k_0(dim):
    x = torch.randn(4, dim, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(BandReweighting(dim, strength=0.0)(x), x, atol=1e-5, rtol=0)
    assert not torch.allclose(BandReweighting(dim)(x), x, atol=1e-3)


def test_initial_band_factors_for_256_dims():
    factors = BandReweighting(256).factors().detach()
    edges = np.floor(np.linspace(0, 255, 31)).astype(int)
    assert edges[:5].tolist() == [0, 8, 17, 25, 34]
    per_band = [float(factors[edges[i]]) for i in range(30)]
    for i in range(30):
        assert torch.all(factors[edges[i] : edges[i + 1]] == factors[edges[i]])  # one factor a band
    assert per_band[:4] == pytest.approx([1.30, 1.29, 1.28, 0.43])  # bands 0-2 boosted, then attenuated
    assert per_band[29] == pytest.approx(0.69)
    assert per_band[3:] == pytest.approx([1 - 0.3 * (60 - i) / 30 for i in range(3, 30)])
    assert float(factors[255]) == 1.0  # the last coefficient is never scaled
    text = BandReweighting(512).factors().detach()  # text: only band 0 is boosted when D = 512
    assert float(text[0]) == pytest.approx(1.3) and float(text[17]) == pytest.approx(1 - 0.3 * 59 / 30)


def test_gradients_reach_k_and_every_band_weight():
    module = BandReweighting(64)
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(2))
    module(x).pow(2).sum().backward()
    assert module.k.grad is not None and float(module.k.grad) != 0
    assert module.w.grad is not None and bool((module.w.grad != 0).all())


def test_cycle_schedule_of_the_released_1700_iteration_cycles():
    schedule = CycleSchedule(1700)
    for c in range(4):
        s = c * 1700
        assert schedule.at(s + 500)[0] == 0 and schedule.at(s + 1000)[0] == 0 and schedule.at(s + 1001)[0] > 0
        assert schedule.at(s + 1699)[0] == pytest.approx(0.0233, abs=5e-5)
        assert schedule.at(s + 1699)[0] == pytest.approx(0.1 * 699 / 3000)
        assert not schedule.at(s + 1400)[2] and schedule.at(s + 1401)[2]  # alignment after s + E_cr
        text_kl = [schedule.at(e)[1] for e in range(s, s + 1700)]
        if c < 2:
            assert max(text_kl) == 0  # no text KL in cycles 0-1
        else:
            assert text_kl[1400] == 0 and text_kl[1699] == pytest.approx(0.1 * 299 / 3000)
    assert CycleSchedule(1700).constants() == (1000.0, 3000.0, 1400.0)
    assert CycleSchedule(1900).constants() == (1000.0, 3000.0, 1500.0)
    assert not CycleSchedule(1900).at(1900 + 1500)[2] and CycleSchedule(1900).at(1900 + 1501)[2]
    # other lengths: the constants scaled (by length / 1700 below 1800)
    assert CycleSchedule(170).constants() == pytest.approx((100.0, 300.0, 140.0))
    assert CycleSchedule(3800).constants() == pytest.approx((2000.0, 6000.0, 3000.0))


def _batch(net, quirks=False):
    g = torch.Generator().manual_seed(3)
    s, t = torch.rand(16, 12, generator=g), F.normalize(torch.randn(16, 10, generator=g), dim=1)
    draws = CycleDraws.draw(1, 16, 16, net.latent, quirks, g)
    return s, t, draws.noise_s[0], draws.noise_t[0], draws.perm[0]


@pytest.mark.parametrize("alignment", ["calibrated", "cross_reconstruction"])
def test_the_alignment_term_is_off_until_E_cr_then_weighted(alignment):
    torch.manual_seed(0)
    net = FSVAENetwork(12, 10, 6, 30, 1, 1, 0)
    cfg = FSVAEConfig(alignment=alignment)
    s, t, noise_s, noise_t, perm = _batch(net)
    with torch.no_grad():
        posteriors = (*net.encode_features(s), *net.encode_text(t))
        off, on = (loss_from_posteriors(net, s, t, posteriors, noise_s, noise_t, perm, (0.0, 0.0, aligned), cfg)
                   for aligned in (False, True))
        sz, tz = reparameterise(*posteriors[:2], noise_s), reparameterise(*posteriors[2:], noise_t)
        t_from_s, s_from_t = net.decode_text(sz), net.decode_features(tz)
        if alignment == "calibrated":
            l_t, l_s = calibrated_alignment(t, t_from_s, s, s_from_t, perm, cfg.lam)
            expected = cfg.lam * 0.5 * (l_t + l_s)  # lam * alpha (ntu60: 0.5)
        else:
            expected = F.mse_loss(s_from_t, s) + F.mse_loss(t_from_s, t)
    assert float(on - off) == pytest.approx(float(expected), rel=1e-4)
    assert CycleSchedule(1700).at(1400)[2] is False


def test_calibrated_loss_bounds_and_its_negatives():
    g = torch.Generator().manual_seed(4)
    t, s = torch.randn(8, 5, generator=g), torch.randn(8, 6, generator=g)
    perm = torch.roll(torch.arange(8), 1)
    for _ in range(5):
        l_t, l_s = calibrated_alignment(t, torch.randn(8, 5, generator=g), s, torch.randn(8, 6, generator=g), perm,
                                        lam=10.0)
        assert 0 < float(l_t) < 1 and float(l_s) >= 0.5
    assert float(calibrated_alignment(t, t, s, s, perm, 10.0)[1]) == 0.5
    # perfect positives (t_from_s = t): L_t = mean sigmoid(-d_neg / lam), smaller as the negatives move away
    basis = torch.eye(8)
    values = [float(calibrated_alignment(c * basis, c * basis, s, s, perm, 10.0)[0]) for c in (0.5, 1.0, 2.0, 4.0)]
    assert values == sorted(values, reverse=True) and values[0] < 0.5


def test_one_noise_scalar_per_sample_under_reference_quirks():
    g = torch.Generator().manual_seed(5)
    assert CycleDraws.draw(4, 50, 8, 6, True, g).noise_s.shape == (4, 8, 1)
    assert CycleDraws.draw(4, 50, 8, 6, False, g).noise_t.shape == (4, 8, 6)
    toy = toy_problem(per_class=10)
    head = build_head("fs_vae", {**TINY["fs_vae"], "cycle": 20, "cycles": 1, "latents_per_class": 7,
                                 "reference_quirks": True})
    head.fit(toy.x, toy.y, toy.seen, seed=0)
    net = head.network()
    samples, targets = head._classifier_set(net, toy.unseen)
    assert samples.shape == (4 * 7, 100) and np.bincount(targets.numpy()).tolist() == [7] * 4
    with torch.no_grad():
        mu, logvar = net.encode_text(torch.from_numpy(toy.unseen.vectors))
    noise = (samples - mu[targets]) / (0.5 * logvar[targets]).exp()
    torch.testing.assert_close(noise, noise[:, :1].expand_as(noise), atol=1e-4, rtol=1e-4)  # all dims together
    assert head.relu_logits and net.text_relu


def test_decoders_and_logits_without_the_quirks():
    toy = toy_problem(per_class=10)
    params = {**TINY["fs_vae"], "cycle": 20, "cycles": 1, "latents_per_class": 7}
    raw = build_head("fs_vae", {**params, "feature_scaling": "none"})
    assert raw.fit(toy.x, toy.y, toy.seen, seed=0)["feature_decoder_relu"]  # non-negative features
    standardised = build_head("fs_vae", params)
    assert not standardised.fit(toy.x, toy.y, toy.seen, seed=0)["feature_decoder_relu"]
    assert not standardised.relu_logits and not standardised.network().text_relu
    samples, targets = standardised._classifier_set(standardised.network(), toy.protos)
    assert samples.shape[0] == 12 * 7 and np.bincount(targets.numpy()).tolist() == [7] * 12
    flat = build_head("fs_vae", {**params, "frequency": False})
    flat.fit(toy.x, toy.y, toy.seen, seed=0)
    assert not any(".front." in key for key in flat.state)


def _naive_train(net, x, text, labels, cfg, generator):
    """As released: every sample's text through the whole text encoder, the DCT of every batch computed in the
    forward pass, plain (unfused, non-foreach) Adam; the same draws."""
    n, length = x.shape[0], cfg.setting("cycle")
    schedule = CycleSchedule(length)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr, foreach=False)
    for cycle in range(cfg.setting("cycles")):
        draws = CycleDraws.draw(length, n, min(cfg.batch_size, n), net.latent, cfg.reference_quirks, generator)
        for i in range(length):
            idx = draws.idx[i]
            loss = fsvae_loss(net, x[idx], text[labels[idx]], draws.noise_s[i], draws.noise_t[i], draws.perm[i],
                              schedule.at(cycle * length + i), cfg)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()


@pytest.mark.parametrize("params", [{}, {"reference_quirks": True}, {"alignment": "cross_reconstruction"},
                                    {"frequency": False}])
def test_the_fast_loop_equals_the_step_by_step_loop(params):
    toy = toy_problem(per_class=8)
    x, text, labels = torch.from_numpy(toy.x), torch.from_numpy(toy.seen.vectors), torch.from_numpy(toy.y)
    cfg = FSVAEConfig(latent=8, cycle=30, cycles=3, batch_size=16, lr=1e-3, **params)
    states = []
    for fast in (True, False):
        torch.manual_seed(0)
        net = FSVAENetwork(64, 32, 8, 30, cfg.frequency, 1, cfg.reference_quirks)
        generator = torch.Generator().manual_seed(1)
        with torch_threads(1):  # (tiny ops: threads only slow them down on a busy CPU)
            if fast:
                assert math.isfinite(train_fsvae(net, x, text, labels, cfg, generator))
            else:
                _naive_train(net, x, text, labels, cfg, generator)
        states.append(net.state_dict())
    for name in states[0]:
        torch.testing.assert_close(states[0][name], states[1][name], atol=2e-5, rtol=1e-4, msg=name)
    if cfg.frequency:  # the DCT parameters were trained
        assert float(states[0]["feature_encoder.front.k"]) != pytest.approx(0.3, abs=1e-6)
