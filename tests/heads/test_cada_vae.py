"""CADA-VAE (zsar/heads/cada_vae.py, cada_vae_model.py): warm-ups, the loss terms, the classifier's data. The
behaviour it shares with FS-VAE (refit = snapshot, save / load, toy zero-shot problem, errors) is tested in
test_latent_vae_head.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vae_toy import SEEN, TINY, UNSEEN, toy_problem

from zsar.heads import build_head
from zsar.heads.cada_vae import kept_rows, repeated_rows
from zsar.heads.cada_vae_model import (
    CADANetwork,
    Weights,
    cada_loss,
    cross_reconstruction,
    distribution_alignment,
    encode_pair,
    l1_sum,
    warmup,
)
from zsar.heads.configs import CADAVAEConfig
from zsar.heads.vae_parts import gaussian_kl


def test_warmups_follow_the_released_piecewise_linear_schedule():
    # (beta: 0 -> 0.25 over epochs 0..93; gamma: 0 until 21 -> 2.37 at 75; delta: 0 until 6 -> 8.13 at 22)
    expected = {0: (0.0, 0.0, 0.0), 6: (0.25 * 6 / 93, 0.0, 0.0), 14: (0.25 * 14 / 93, 0.0, 8.13 * 8 / 16),
                21: (0.25 * 21 / 93, 0.0, 8.13 * 15 / 16), 48: (0.25 * 48 / 93, 2.37 * 27 / 54, 8.13),
                75: (0.25 * 75 / 93, 2.37, 8.13), 93: (0.25, 2.37, 8.13), 99: (0.25, 2.37, 8.13)}
    cfg = CADAVAEConfig()
    for epoch, (beta, gamma, delta) in expected.items():
        w = Weights.at(epoch, cfg)
        assert (w.kl, w.cross, w.distribution) == pytest.approx((beta, gamma, delta), abs=1e-12), epoch
    assert Weights.at(48, cfg).cross == pytest.approx(1.185)
    assert [warmup(e, (10, 20), 2.0) for e in (0, 10, 15, 20, 30)] == [0.0, 0.0, 1.0, 2.0, 2.0]


def _w2_naive(m1, v1, m2, v2) -> float:
    """The general closed form for Gaussians, with full covariance matrices and matrix square roots:
    W2^2 = ||m1 - m2||^2 + tr(S1 + S2 - 2 (S2^1/2 S1 S2^1/2)^1/2)."""
    def sqrtm(s):
        values, vectors = np.linalg.eigh(s)
        return vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T

    s1, s2 = np.diag(v1), np.diag(v2)
    root2 = sqrtm(s2)
    return float(np.sqrt(np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * sqrtm(root2 @ s1 @ root2))))


def test_distribution_alignment_is_the_2_wasserstein_distance_summed_over_the_batch():
    g = torch.Generator().manual_seed(0)
    mu_x, lv_x, mu_a, lv_a = (torch.randn(5, 4, generator=g, dtype=torch.float64) for _ in range(4))
    expected = sum(_w2_naive(mu_x[i].numpy(), lv_x[i].exp().numpy(), mu_a[i].numpy(), lv_a[i].exp().numpy())
                   for i in range(5))
    assert float(distribution_alignment(mu_x, lv_x, mu_a, lv_a)) == pytest.approx(expected, rel=1e-9)
    assert float(distribution_alignment(mu_x, lv_x, mu_x + 0.0, lv_x + 0.0)) == 0.0


def _net_and_batch():
    torch.manual_seed(0)
    net = CADANetwork(6, 5, 3, 8, 7, 9, 4)
    g = torch.Generator().manual_seed(1)
    x, a = torch.randn(10, 6, generator=g), torch.randn(10, 5, generator=g)
    enc = encode_pair(net, x, a, torch.randn(10, 3, generator=g), torch.randn(10, 3, generator=g))
    return net, x, a, enc


def test_cross_reconstruction_decodes_each_modality_from_the_other_latent():
    net, x, a, enc = _net_and_batch()
    with torch.no_grad():
        cross = cross_reconstruction(net, x, a, enc.z_x, enc.z_a)
        expected = (net.feature_decoder(enc.z_a) - x).abs().sum() + (net.text_decoder(enc.z_x) - a).abs().sum()
        assert float(cross) == pytest.approx(float(expected), rel=1e-6)
        # the own latents (the reconstruction term) give a different value
        assert float(cross_reconstruction(net, x, a, enc.z_a, enc.z_x)) != pytest.approx(float(cross), rel=1e-3)


def test_the_loss_is_reconstruction_plus_weighted_terms():
    net, x, a, enc = _net_and_batch()
    with torch.no_grad():
        base = cada_loss(net, x, a, enc, Weights(0.0, 0.0, 0.0))
        reconstruction = l1_sum(net.feature_decoder(enc.z_x), x) + l1_sum(net.text_decoder(enc.z_a), a)
        assert float(base) == pytest.approx(float(reconstruction), rel=1e-6)
        kl_sum = 10 * (gaussian_kl(enc.mu_x, enc.logvar_x) + gaussian_kl(enc.mu_a, enc.logvar_a))
        terms = {Weights(0.5, 0.0, 0.0): 0.5 * kl_sum,
                 Weights(0.0, 1.5, 0.0): 1.5 * cross_reconstruction(net, x, a, enc.z_x, enc.z_a),
                 Weights(0.0, 0.0, 2.0): 2.0 * distribution_alignment(enc.mu_x, enc.logvar_x, enc.mu_a, enc.logvar_a)}
        for w, term in terms.items():
            assert float(cada_loss(net, x, a, enc, w) - base) == pytest.approx(float(term), rel=1e-4), w


def test_the_released_sampler_under_reference_quirks():
    """One noise scalar per sample broadcast over the latent dims, scaled by exp(logvar) (not its square root)."""
    net, x, a, _ = _net_and_batch()
    noise = torch.randn(10, 1, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        enc = encode_pair(net, x, a, noise, noise, log_scale=1.0)
        ratio = (enc.z_x - enc.mu_x) / enc.logvar_x.exp()
    torch.testing.assert_close(ratio, noise.expand(-1, 3))


def test_kept_and_repeated_rows():
    labels = np.array([5] * 7 + [2] * 3 + [9] * 4)
    rows = kept_rows(labels, 4, seed=0)
    assert sorted(np.bincount(labels[rows]).tolist())[-3:] == [3, 4, 4]  # up to 4 a class, all of a smaller one
    np.testing.assert_array_equal(rows, kept_rows(labels, 4, seed=0))
    assert not all(np.array_equal(rows, kept_rows(labels, 4, seed=s)) for s in range(1, 5))
    kept = labels[rows]
    tiled = repeated_rows(kept, np.array([2, 9]), 7)
    assert len(tiled) == 14 and (kept[tiled[:7]] == 2).all() and (kept[tiled[7:]] == 9).all()
    np.testing.assert_array_equal(tiled[:7], np.flatnonzero(kept == 2)[[0, 1, 2, 0, 1, 2, 0]])


@pytest.mark.parametrize("quirks", [False, True])
def test_classifier_data_composition(quirks):
    toy = toy_problem(per_class=12)
    params = {**TINY["cada_vae"], "epochs": 2, "seen_latents_per_class": 20, "unseen_latents_per_class": 9,
              "zsl_latents_per_class": 5, "reference_quirks": quirks}
    head = build_head("cada_vae", params)
    head.fit(toy.x, toy.y, toy.seen, seed=0)
    assert head.state["seen_mu"].shape[0] == 8 * 12  # all 12 samples of a class kept (fewer than 20)
    np.testing.assert_array_equal(head.state["seen_classes"], SEEN)
    net = head.network()
    # GZSL: every trained class its real-sample latents (repeated to 20), every other class 9 text latents
    _, targets = head._classifier_set(net, toy.protos)
    assert np.bincount(targets.numpy()).tolist() == [20] * 8 + [9] * 4
    _, targets = head._classifier_set(net, toy.protos.subset([9, 2, 11]))
    assert np.bincount(targets.numpy()).tolist() == [9, 20, 9]
    # ZSL: no scored class was trained on
    _, targets = head._classifier_set(net, toy.unseen)
    assert np.bincount(targets.numpy()).tolist() == [5] * 4
    # the seen latents are the kept posteriors, reparameterised (with the released sampler under the quirks)
    samples, _ = head._classifier_set(net, toy.protos.subset([SEEN[1]]))
    rows = repeated_rows(head.state["seen_labels"], np.array([SEEN[1]]), 20)
    mu, logvar = (torch.from_numpy(head.state[k][rows]) for k in ("seen_mu", "seen_logvar"))
    noise = (samples - mu) / (logvar.exp() if quirks else (0.5 * logvar).exp())
    if quirks:
        torch.testing.assert_close(noise, noise[:, :1].expand_as(noise))
    else:
        assert 0.7 < float(noise.std()) < 1.3 and not torch.allclose(noise, noise[:, :1].expand_as(noise))


def test_scores_over_seen_and_unseen_classes_are_its_own_gzsl():
    """Real seen latents make the seen classes scorable together with the unseen ones (no gate needed)."""
    toy = toy_problem()
    head = build_head("cada_vae", TINY["cada_vae"])
    head.fit(toy.x, toy.y, toy.seen, seed=0)
    scores = head.score(np.concatenate([toy.x, toy.x_test]), toy.protos)
    predicted = scores.argmax(1)
    assert np.mean(predicted[: len(toy.x)] == toy.y) > 0.6
    assert np.isin(predicted[len(toy.x):], UNSEEN).mean() > 0.1  # unseen classes are predicted too
