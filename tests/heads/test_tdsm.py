from __future__ import annotations

import numpy as np
import pytest
import torch

from zsar.errors import ZsarError
from zsar.features.prototypes import ClassPrototypes
from zsar.heads import build_head, load_head
from zsar.heads.tdsm import TDSMHead, batch_orders, cosine_with_warmup, matching_errors
from zsar.heads.tdsm_model import (
    TDSMDenoiser,
    add_noise,
    alpha_bars,
    denoising_errors,
    tdsm_loss,
    timestep_embedding,
    triplet_terms,
)

# one thread: these tiny models are many small ops, which threads only slow down on a busy CPU
TINY = {"hidden": 16, "depth": 1, "heads": 2, "batch_size": 8, "warmup": 2, "lr": 1e-3, "threads": 1}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _prototypes(ids, dim, views=None, seed=0) -> ClassPrototypes:
    rng = np.random.default_rng(seed)
    shape = (len(ids), dim) if views is None else (views, len(ids), dim)
    vectors = rng.standard_normal(shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=-1, keepdims=True)
    names = [f"class {i}" for i in ids]
    if views is None:
        return ClassPrototypes(np.array(ids), names, vectors, "toy", [[n] for n in names], "toy-model")
    mean = vectors.mean(0)
    mean /= np.linalg.norm(mean, axis=-1, keepdims=True)
    return ClassPrototypes(np.array(ids), names, mean, "toy", [[n] for n in names], "toy-model", views=vectors,
                           view_names=[f"view {v}" for v in range(views)])


def _data(n=20, dim=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    return (rng.standard_normal((n, dim)) + labels[:, None]).astype(np.float32), labels


def _perturbed(net: TDSMDenoiser, seed=0) -> TDSMDenoiser:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=generator))
    return net.eval()


def _fitted(views=2, **params) -> tuple[TDSMHead, ClassPrototypes, np.ndarray]:
    x, y = _data()
    protos = _prototypes(range(3), 5, views)
    head = build_head("tdsm", {**TINY, "iterations": 6, **params})
    head.fit(x, y, protos, seed=1)
    return head, protos, x


# -- schedule and network ------------------------------------------------------------------------------------------
def test_schedule_matches_the_spec_and_noising_the_closed_form():
    bars = alpha_bars(50)
    assert bars.dtype == torch.float32 and bars.shape == (50,)
    for t, value in ((0, 0.99915), (25, 0.93410), (49, 0.76376)):
        assert bars[t].item() == pytest.approx(value, abs=1e-5)
    x0, eps, t = torch.randn(4, 7), torch.randn(4, 7), torch.tensor([0, 25, 49, 3])
    expected = torch.stack([bars[s].sqrt() * x0[i] + (1 - bars[s]).sqrt() * eps[i] for i, s in enumerate(t)])
    torch.testing.assert_close(add_noise(x0, eps, t, bars), expected)


def test_timestep_embedding_is_cosines_then_sines():
    emb = timestep_embedding(torch.tensor([0, 3]))
    assert emb.shape == (2, 256)
    assert torch.equal(emb[0, :128], torch.ones(128)) and torch.equal(emb[0, 128:], torch.zeros(128))
    assert emb[1, 0].item() == pytest.approx(np.cos(3.0)) and emb[1, 128].item() == pytest.approx(np.sin(3.0))


def test_fresh_model_outputs_exactly_zero_so_all_classes_tie():
    torch.manual_seed(0)
    net = TDSMDenoiser(6, 5, 2, 16, 2, 2)
    out = net(torch.randn(4, 6), torch.tensor([0, 1, 25, 49]), torch.randn(4, 5), torch.randn(4, 2, 5))
    assert out.shape == (4, 6) and torch.equal(out, torch.zeros(4, 6))
    head = TDSMHead(TDSMHead.Config(**TINY))
    head._store(net, torch.randn(3, 6), 0)
    scores = head.score(np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32),
                        _prototypes(range(4), 5, views=2))
    assert (scores == scores[:, :1]).all()


def test_the_feature_token_attends_to_the_text_tokens():
    torch.manual_seed(0)
    net = _perturbed(TDSMDenoiser(6, 5, 2, 16, 2, 2))
    x, t, g, local = torch.randn(1, 6), torch.tensor([10]), torch.randn(1, 5), torch.randn(1, 2, 5)
    other = local.clone()
    other[0, 1] += 1.0  # one local token changes, the global condition does not
    with torch.no_grad():
        base, changed = net(x, t, g, local), net(x, t, g, other)
        c = net.condition(t, g)
        block = net.blocks[0]
        # only through the joint softmax: the first block's x-stream sees the text tokens nowhere else
        x_only, _ = block(net.x_embed(x).unsqueeze(1), net.text_tokens(local), c)
        x_other, _ = block(net.x_embed(x).unsqueeze(1), net.text_tokens(other), c)
    assert not torch.allclose(base, changed)
    assert not torch.allclose(x_only, x_other)


# -- losses --------------------------------------------------------------------------------------------------------
def test_triplet_term_is_zero_where_the_negative_is_the_positive_and_uses_per_sample_means():
    e_pos, e_neg = torch.tensor([0.5, 0.5, 2.0]), torch.tensor([0.1, 0.1, 0.2])
    pos, neg = torch.tensor([0, 1, 2]), torch.tensor([0, 2, 1])
    terms = triplet_terms(e_pos, e_neg, pos, neg, margin=1.0)
    assert terms[0].item() == 0.0  # 0.5 - 0.1 + 1 > 0, masked
    torch.testing.assert_close(terms[1:], torch.tensor([1.4, 2.8]))
    loss = tdsm_loss(e_pos, e_neg, pos, neg, 1.0, 2.0, 0.5)
    assert loss.item() == pytest.approx(2.0 * 1.0 + 0.5 * (0 + 1.4 + 2.8) / 3)  # masked row counts in the mean

    torch.manual_seed(0)
    net = _perturbed(TDSMDenoiser(6, 5, 1, 16, 1, 2))
    x0, eps, t = torch.randn(3, 6), torch.randn(3, 6), torch.tensor([3, 20, 40])
    g = torch.randn(3, 5)
    got_pos, got_neg = denoising_errors(net, x0, eps, t, pos, neg, g, g[:, None], alpha_bars(50))
    bars = alpha_bars(50)
    for i in range(3):
        x_t = add_noise(x0[i : i + 1], eps[i : i + 1], t[i : i + 1], bars)
        for cls, got in ((pos[i], got_pos[i]), (neg[i], got_neg[i])):
            want = (net(x_t, t[i : i + 1], g[cls][None], g[cls][None, None]) - eps[i]).pow(2).mean()
            assert got.item() == pytest.approx(want.item(), rel=1e-5)  # a mean over dims, not a sum


def test_positive_and_negative_passes_share_noise_and_timestep():
    torch.manual_seed(0)
    net = _perturbed(TDSMDenoiser(6, 5, 1, 16, 1, 2))
    seen = {}
    forward = net.forward

    def recording(x_t, t, g, local):
        seen.update(x_t=x_t, t=t, g=g)
        return forward(x_t, t, g, local)

    net.forward = recording
    x0, eps, t = torch.randn(4, 6), torch.randn(4, 6), torch.tensor([1, 2, 30, 49])
    text = torch.randn(3, 5)
    pos, neg = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 1, 0, 2])
    e_pos, e_neg = denoising_errors(net, x0, eps, t, pos, neg, text, text[:, None], alpha_bars(50))
    assert torch.equal(seen["x_t"][:4], seen["x_t"][4:]) and torch.equal(seen["t"][:4], seen["t"][4:])
    assert torch.equal(seen["g"][:4], text[pos]) and torch.equal(seen["g"][4:], text[neg])
    assert e_pos[1].item() == pytest.approx(e_neg[1].item(), rel=1e-6)  # same class: same error


# -- training loop -------------------------------------------------------------------------------------------------
def test_batches_drop_the_last_incomplete_one_and_small_sets_are_one_batch():
    batches = batch_orders(10, 4, torch.Generator().manual_seed(0))
    first_pass = [next(batches) for _ in range(2)]
    assert all(len(b) == 4 for b in first_pass) and len(set(torch.cat(first_pass).tolist())) == 8
    small = batch_orders(3, 8, torch.Generator().manual_seed(0))
    assert sorted(next(small).tolist()) == [0, 1, 2]


def test_cosine_schedule_with_warmup():
    factor = cosine_with_warmup(10, 110)
    assert factor(0) == 0.0 and factor(5) == 0.5 and factor(10) == 1.0
    assert factor(60) == pytest.approx(0.5) and factor(110) == pytest.approx(0.0)
    assert cosine_with_warmup(0, 10)(0) == 1.0


def test_stopping_at_a_snapshot_step_reproduces_that_snapshot_exactly():
    x, y = _data()
    protos = _prototypes(range(3), 5)
    params = {**TINY, "iterations": 10, "evaluations": 4}
    head = build_head("tdsm", params)
    snapshots = []
    head.fit(x, y, protos, seed=3, monitor=lambda h: snapshots.append(h.snapshot()))
    assert [head.snapshot_setting(k) for k in range(1, 5)] == [3, 6, 9, 10]
    assert [int(s.state["steps"][0]) for s in snapshots] == [3, 6, 9, 10]
    for k in (2, 4):
        again = build_head("tdsm", {**params, "stop_at": head.snapshot_setting(k)})
        again.fit(x, y, protos, seed=3)
        assert again.state.keys() == snapshots[k - 1].state.keys()
        for key, value in snapshots[k - 1].state.items():
            np.testing.assert_array_equal(again.state[key], value, err_msg=key)
    assert not np.array_equal(snapshots[0].state["net.x_embed.weight"], snapshots[1].state["net.x_embed.weight"])


# -- scoring -------------------------------------------------------------------------------------------------------
def test_scores_are_deterministic_and_the_sum_over_the_fixed_noises(tmp_path):
    head, protos, x = _fitted(views=2, feature_scaling="standardise", score_noises=3)
    net = _perturbed(head.network())  # a few steps barely move the zero-initialised outputs
    head._store(net, torch.from_numpy(head.state["score_noise"]), 6)
    scores = head.score(x, protos)
    assert scores.shape == (20, 3) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores, head.score(x, protos))
    np.testing.assert_array_equal(load_head(head.save(tmp_path / "tdsm")).score(x, protos), scores)
    # naive: one class and one noise at a time
    bars, noise = alpha_bars(50), torch.from_numpy(head.state["score_noise"])
    feats = torch.from_numpy(head._standardise(x))
    local = torch.from_numpy(protos.views.transpose(1, 0, 2).copy())
    t = torch.full((20,), 25)
    naive = np.zeros((20, 3))
    with torch.no_grad():
        for c in range(3):
            for eps in noise:
                predicted = net(add_noise(feats, eps.expand(20, -1), t, bars), t,
                                torch.from_numpy(protos.vectors[c]).expand(20, -1), local[c].expand(20, -1, -1))
                naive[:, c] += (predicted - eps).pow(2).mean(1).numpy()
    np.testing.assert_allclose(-scores, naive, rtol=1e-5)
    # chunked scoring agrees with one pass; a class's score does not depend on the others
    import zsar.heads.tdsm as module
    rows, module.SCORE_ROWS = module.SCORE_ROWS, 7
    try:
        np.testing.assert_allclose(head.score(x, protos), scores, rtol=1e-5)
    finally:
        module.SCORE_ROWS = rows
    np.testing.assert_allclose(head.score(x, protos.subset([2, 0]))[:, 0], scores[:, 2], rtol=1e-5)
    assert matching_errors is module.matching_errors


def test_bad_inputs_are_clear_errors():
    x, y = _data()
    with pytest.raises(ZsarError, match="not fitted"):
        build_head("tdsm", TINY).score(x, _prototypes(range(3), 5))
    head, protos, x = _fitted(views=2)
    with pytest.raises(ZsarError, match=r"1 text view\(s\) per class; the head was fitted with 2"):
        head.score(x, _prototypes(range(3), 5))
    with pytest.raises(ZsarError, match="text prototypes are 7-d; the head was fitted on 5-d"):
        head.score(x, _prototypes(range(3), 7, views=2))
    with pytest.raises(ZsarError, match="fitted on 6-d features"):
        head.score(x[:, :4], protos)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ZsarError, match="NaN"):
        build_head("tdsm", TINY).fit(bad, y, protos)
    with pytest.raises(ZsarError, match="no text prototype"):
        build_head("tdsm", TINY).fit(x, y, _prototypes(range(2), 5, views=2))
    with pytest.raises(ZsarError, match="for a GPU"):
        build_head("tdsm", {"preset": "faithful"})
    with pytest.raises(ZsarError, match="diverged"):
        build_head("tdsm", {**TINY, "iterations": 4, "lr": 1e30, "warmup": 0}).fit(x * 1e30, y, protos)


# -- toy zero-shot problem -----------------------------------------------------------------------------------------
def test_toy_zero_shot_transfer_beats_chance():
    rng = np.random.default_rng(0)
    classes, text_dim, dim = 12, 6, 16
    protos = _prototypes(range(classes), text_dim, seed=1)
    mapping = rng.standard_normal((dim, text_dim)).astype(np.float32) * 1.5
    means = protos.vectors @ mapping.T

    def samples(ids, per_class):
        labels = np.repeat(ids, per_class)
        return (means[labels] + 0.3 * rng.standard_normal((len(labels), dim))).astype(np.float32), labels

    seen, unseen = list(range(8)), list(range(8, 12))
    x, y = samples(seen, 40)
    queries, truth = samples(unseen, 30)
    # small enough to stay on one thread (a few seconds on a busy CPU)
    head = build_head("tdsm", {"hidden": 32, "depth": 1, "heads": 2, "iterations": 300, "batch_size": 32,
                               "lr": 2e-3, "warmup": 10, "threads": 1})
    head.fit(x, y, protos.subset(seen), seed=0)
    predicted = np.asarray(unseen)[head.score(queries, protos.subset(unseen)).argmax(1)]
    accuracy = (predicted == truth).mean()
    assert accuracy > 0.6, accuracy  # chance: 0.25
