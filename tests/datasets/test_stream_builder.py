from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from zsar.datasets.source import SampleSource
from zsar.datasets.stream_builder import StreamRecipe, build_streams, describe_streams, stream_script
from zsar.datasets.synthetic import SyntheticConfig, synthetic_source
from zsar.errors import ZsarError

V, C = 5, 3


def make_source(specs, fail=(), classes=4, name="toy") -> SampleSource:
    """specs: (split, label, frames, bodies) per sample; samples named in `fail` raise ZsarError on load."""
    rows, data = [], {}
    for i, (split, label, frames, bodies) in enumerate(specs):
        sample_id = f"s{i:03d}"
        rows.append({"sample_id": sample_id, "label": label, "class_name": f"c{label}", "split": split,
                     "source": f"{sample_id}.npy"})
        data[i] = np.random.default_rng(i).normal(size=(bodies, frames, V, C)).astype(np.float32)

    def load(i: int) -> np.ndarray:
        if rows[i]["sample_id"] in fail:
            raise ZsarError("broken sample", rows[i]["source"])
        return data[i].copy()

    return SampleSource(name=name, class_names=[f"c{k}" for k in range(classes)], metadata=pd.DataFrame(rows),
                        load=load)


def mixed_specs(n_train=30, n_test=12, classes=4):
    rng = np.random.default_rng(123)
    specs = [("train", int(rng.integers(classes)), int(rng.integers(3, 12)), int(rng.integers(1, 3)))
             for _ in range(n_train)]
    specs += [("test", int(rng.integers(classes)), int(rng.integers(3, 12)), 1) for _ in range(n_test)]
    return specs


def index_of(source: SampleSource) -> dict[str, int]:
    return {sid: i for i, sid in enumerate(source.metadata["sample_id"])}


def padded(x: np.ndarray, bodies: int) -> np.ndarray:
    out = np.zeros((bodies, *x.shape[1:]), dtype=np.float32)
    out[: x.shape[0]] = x
    return out


def gaps_between(stream):
    """(end of one part, start of the next) for consecutive parts."""
    return [(a[2], b[1]) for a, b in zip(stream.parts, stream.parts[1:], strict=False)]


def test_parts_tile_stream_and_match_source_samples():
    source = make_source(mixed_specs())
    streams = build_streams(source, StreamRecipe(actions_per_stream=(2, 4), seed=1))
    assert streams.class_names == source.class_names and streams.background == ()
    where = index_of(source)
    padded_seen = False
    for stream in streams.streams:
        bodies = stream.keypoints.shape[0]
        assert stream.keypoints.dtype == np.float32 and stream.keypoints.shape[2:] == (V, C)
        assert stream.parts[0][1] == 0 and stream.parts[-1][2] == len(stream)
        assert all(end == start for end, start in gaps_between(stream))  # no gap, no overlap
        for sample_id, start, end in stream.parts:
            i = where[sample_id]
            x = source.load(i)
            assert end - start == x.shape[1]
            np.testing.assert_array_equal(stream.keypoints[:, start:end], padded(x, bodies))
            assert (stream.labels[start:end] == source.metadata["label"].iloc[i]).all()
            padded_seen |= x.shape[0] < bodies
    assert padded_seen  # the specs mix one- and two-body samples, so some stream pads a sample


def test_each_sample_used_exactly_once_and_splits_never_mix():
    source = make_source(mixed_specs())
    recipe = StreamRecipe(actions_per_stream=(3, 5), no_repeat=False, seed=2)
    streams = build_streams(source, recipe)
    split_of = dict(zip(source.metadata["sample_id"], source.metadata["split"], strict=True))
    for split in ("train", "test"):
        group = streams.split(split)
        used = [p[0] for s in group for p in s.parts]
        assert sorted(used) == sorted(k for k, v in split_of.items() if v == split)
        assert all(split_of[sid] == split for sid in used)
        counts = [len(s.parts) for s in group]
        assert all(3 <= c <= 5 for c in counts[:-1]) and 1 <= counts[-1] <= 5
        assert [s.stream_id for s in group] == [f"{split}_{k:04d}" for k in range(len(group))]
    assert {s.split for s in streams.streams} == {"train", "test"}
    assert streams.provenance["built_from"] == "toy" and streams.provenance["recipe"]["seed"] == 2
    assert streams.provenance["skipped"] == {}


def test_only_requested_splits_are_built():
    source = make_source(mixed_specs())
    streams = build_streams(source, StreamRecipe(actions_per_stream=(2, 3)), splits=("test",))
    assert {s.split for s in streams.streams} == {"test"}
    with pytest.raises(ZsarError, match="no samples in the splits"):
        build_streams(source, StreamRecipe(), splits=("val",))


def test_streams_per_split_deals_all_samples_before_reusing_any():
    source = make_source([("train", k % 4, 4, 1) for k in range(10)] + [("test", k % 4, 4, 1) for k in range(6)])
    recipe = StreamRecipe(actions_per_stream=(3, 3), streams_per_split={"train": 7}, no_repeat=False, seed=5)
    streams = build_streams(source, recipe)
    train = streams.split("train")
    assert len(train) == 7 and all(len(s.parts) == 3 for s in train)
    used = [p[0] for s in train for p in s.parts]
    assert len(set(used[:10])) == 10 and len(set(used[10:20])) == 10  # a full round, then a new one
    test_used = [p[0] for s in streams.split("test") for p in s.parts]  # not named: each test sample once
    assert sorted(test_used) == [f"s{k:03d}" for k in range(10, 16)]


def test_reused_samples_stay_balanced_with_no_repeat():
    # when the rest of a round is all of the previous action's class, a new round is dealt after it, so the
    # rest is still used first: usage stays even (dropping the rest would leave most seeds unbalanced)
    source = make_source([("train", k % 3, 3, 1) for k in range(9)], classes=3)
    balanced = 0
    for seed in range(10):
        recipe = StreamRecipe(actions_per_stream=(4, 4), streams_per_split={"train": 9}, seed=seed)
        counts = Counter(p[0] for s in build_streams(source, recipe).streams for p in s.parts)
        assert len(counts) == 9 and 3 <= min(counts.values()) and max(counts.values()) <= 5
        balanced += set(counts.values()) == {4}
    assert balanced >= 6


def test_gaps_and_transitions_are_background_of_the_drawn_lengths():
    source = make_source(mixed_specs())
    recipe = StreamRecipe(actions_per_stream=(3, 5), background_gap=(2, 5), transition=3, seed=3)
    streams = build_streams(source, recipe)
    bg = len(source.class_names)
    assert streams.class_names == [*source.class_names, "background"] and streams.background == (bg,)
    gap_lengths = set()
    for stream in streams.streams:
        covered = np.zeros(len(stream), dtype=bool)
        for _, start, end in stream.parts:
            assert not covered[start:end].any()
            covered[start:end] = True
        for end, start in gaps_between(stream):
            between = start - end
            assert 2 + 3 <= between <= 5 + 3
            assert (stream.labels[end:start] == bg).all()
            gap = between - 3
            gap_lengths.add(gap)
            last = stream.keypoints[:, end - 1]
            held = stream.keypoints[:, end:end + gap]
            np.testing.assert_array_equal(held, np.repeat(last[:, None], gap, axis=1))  # "still"
            first = stream.keypoints[:, start]
            for k in range(3):
                w = (k + 1) / 4
                np.testing.assert_allclose(stream.keypoints[:, end + gap + k], (1 - w) * last + w * first, atol=1e-5)
        assert (covered | (stream.labels == bg)).all()  # every frame is an action's or background
        assert not (covered & (stream.labels == bg)).any()
    assert len(gap_lengths) > 1  # drawn, not fixed
    summary = describe_streams(streams)
    assert summary["total"]["streams"] == len(streams)
    assert 0 < summary["total"]["background_fraction"] < 1
    assert summary["total"]["frames"] == sum(len(s) for s in streams.streams)
    assert summary["train"]["actions"] == 30 and summary["test"]["actions"] == 12


def test_zeros_background_and_no_background_class():
    source = make_source(mixed_specs())
    zeros = build_streams(source, StreamRecipe(actions_per_stream=(3, 4), background_gap=(4, 4), transition=2,
                                               background_mode="zeros"))
    for stream in zeros.streams:
        for end, _ in gaps_between(stream):
            assert not stream.keypoints[:, end:end + 4].any()
    plain = build_streams(source, StreamRecipe(actions_per_stream=(3, 4), background_gap=(4, 4), transition=2),
                          background_name=None)
    assert plain.class_names == source.class_names and plain.background == ()
    where = index_of(source)
    for stream in plain.streams:
        for (end, start), nxt in zip(gaps_between(stream), stream.parts[1:], strict=True):
            assert start - end == 6
            assert (stream.labels[end:end + 4] == -1).all()  # gap: unlabelled
            assert (stream.labels[end + 4:start] == source.metadata["label"].iloc[where[nxt[0]]]).all()
    assert describe_streams(plain)["total"]["unlabelled_fraction"] > 0
    with pytest.raises(ZsarError, match="already has a class"):
        build_streams(source, StreamRecipe(transition=1), background_name="c1")


def test_no_repeat_keeps_consecutive_classes_apart():
    specs = [("train", k % 2, 3, 1) for k in range(40)]  # two classes: repeats are likely without the rule
    source = make_source(specs, classes=2)
    label_of = dict(zip(source.metadata["sample_id"], source.metadata["label"], strict=True))

    def repeats(streams):
        return sum(label_of[a[0]] == label_of[b[0]] for s in streams.streams for a, b in zip(s.parts, s.parts[1:],
                                                                                              strict=False))

    kept = build_streams(source, StreamRecipe(actions_per_stream=(4, 8), no_repeat=True, seed=9))
    assert repeats(kept) == 0
    assert sorted(p[0] for s in kept.streams for p in s.parts) == sorted(label_of)  # still each sample once
    assert repeats(build_streams(source, StreamRecipe(actions_per_stream=(4, 8), no_repeat=False, seed=9))) > 0


def test_deterministic_and_seeded():
    source = make_source(mixed_specs())
    recipe = StreamRecipe(actions_per_stream=(2, 5), background_gap=(0, 3), transition=1, seed=11)
    a, b = build_streams(source, recipe), build_streams(source, recipe)
    assert [s.parts for s in a.streams] == [s.parts for s in b.streams]
    for x, y in zip(a.streams, b.streams, strict=True):
        np.testing.assert_array_equal(x.labels, y.labels)
        np.testing.assert_array_equal(x.keypoints, y.keypoints)
    c = build_streams(source, StreamRecipe(actions_per_stream=(2, 5), background_gap=(0, 3), transition=1, seed=12))
    assert [p[0] for s in c.streams for p in s.parts] != [p[0] for s in a.streams for p in s.parts]


def test_failing_sample_is_skipped_and_recorded():
    specs = mixed_specs()
    source = make_source(specs, fail={"s004", "s031"})
    streams = build_streams(source, StreamRecipe(actions_per_stream=(2, 4)))
    assert set(streams.provenance["skipped"]) == {"s004", "s031"}
    assert "broken sample" in streams.provenance["skipped"]["s004"]
    used = sorted(p[0] for s in streams.streams for p in s.parts)
    assert used == sorted(f"s{k:03d}" for k in range(len(specs)) if k not in (4, 31))
    all_test_broken = make_source(specs, fail={f"s{k:03d}" for k in range(30, 42)})
    with pytest.raises(ZsarError, match="split 'test'"):
        build_streams(all_test_broken, StreamRecipe())


def test_bad_shapes_and_labels_are_skipped():
    source = make_source([("train", 0, 5, 1), ("train", 1, 5, 1), ("train", 9, 5, 1)])
    good = source.load
    source.load = lambda i: good(i)[:, :, :3] if i == 1 else good(i)  # fewer joints than its split's samples
    streams = build_streams(source, StreamRecipe(actions_per_stream=(3, 3), seed=0))
    skipped = streams.provenance["skipped"]
    assert "outside the classes" in skipped["s002"]
    assert [p[0] for s in streams.streams for p in s.parts] == ["s000"] and "joints" in skipped["s001"]


@pytest.mark.parametrize("kwargs, message", [
    ({"actions_per_stream": (0, 3)}, "actions_per_stream"),
    ({"actions_per_stream": (5, 3)}, "actions_per_stream"),
    ({"actions_per_stream": (2,)}, "actions_per_stream"),
    ({"actions_per_stream": (2.5, 3)}, "actions_per_stream"),
    ({"background_gap": (-1, 2)}, "background_gap"),
    ({"background_gap": (3, 1)}, "background_gap"),
    ({"background_mode": "noise"}, "background_mode"),
    ({"transition": -1}, "transition"),
    ({"transition": True}, "transition"),
    ({"no_repeat": "yes"}, "no_repeat"),
    ({"seed": -1}, "seed"),
    ({"successors": -1}, "successors"),
    ({"successors": 1.5}, "successors"),
    ({"streams_per_split": {"train": 0}}, "streams_per_split"),
    ({"streams_per_split": {"dev": 3}}, "streams_per_split"),
    ({"streams_per_split": [3]}, "streams_per_split"),
])
def test_bad_recipe_values_raise(kwargs, message):
    with pytest.raises(ZsarError, match=message):
        StreamRecipe(**kwargs)


def test_recipe_accepts_lists_and_other_errors():
    recipe = StreamRecipe(actions_per_stream=[2, 3], background_gap=[1, 2])  # as a TOML file gives them
    assert recipe.actions_per_stream == (2, 3) and recipe.background_gap == (1, 2)
    source = make_source(mixed_specs())
    video = SampleSource("vid", source.class_names, source.metadata, source.load, modality="video")
    with pytest.raises(ZsarError, match="skeleton"):
        build_streams(video, StreamRecipe())
    with pytest.raises(ZsarError, match="splits"):
        build_streams(source, StreamRecipe(), splits=("dev",))


def test_synthetic_source_streams():
    source = synthetic_source(SyntheticConfig(num_subjects=3, repetitions=1, test_subjects=1, max_frames=50))
    streams = build_streams(source, StreamRecipe(actions_per_stream=(3, 5), background_gap=(0, 4), seed=1))
    meta = source.metadata
    where = index_of(source)
    assert sorted(p[0] for s in streams.streams for p in s.parts) == sorted(meta["sample_id"])
    counts = Counter(meta["split"].iloc[where[p[0]]] == s.split for s in streams.streams for p in s.parts)
    assert counts == Counter({True: len(meta)})
    stream = streams.split("test")[0]
    sample_id, start, end = stream.parts[1]
    np.testing.assert_array_equal(stream.keypoints[:, start:end], source.load(where[sample_id]))
    assert (stream.labels[start:end] == meta["label"].iloc[where[sample_id]]).all()
    assert streams.background == (16,) and streams.class_names[-1] == "background"


def test_script_is_seeded_shared_and_never_self():
    recipe = StreamRecipe(successors=2, seed=3)
    script = stream_script(6, recipe)
    assert script == stream_script(6, StreamRecipe(successors=2, seed=3, actions_per_stream=(2, 2)))
    assert script != stream_script(6, StreamRecipe(successors=2, seed=4))
    assert sorted(script) == list(range(6))
    assert all(len(n) == 2 and c not in n for c, n in script.items())
    assert stream_script(6, StreamRecipe()) == {}
    with pytest.raises(ZsarError, match="successors"):
        stream_script(2, recipe)


def test_scripted_streams_follow_the_script_while_the_deck_allows():
    source = make_source(mixed_specs(n_train=80, n_test=40, classes=5), classes=5)
    recipe = StreamRecipe(actions_per_stream=(3, 5), successors=2, seed=1)
    streams = build_streams(source, recipe)
    script = stream_script(5, recipe)
    pairs = [(int(s.labels[a[1]]), int(s.labels[b[1]])) for s in streams.streams
             for a, b in zip(s.parts, s.parts[1:], strict=False)]
    followed = np.mean([b in script[a] for a, b in pairs])
    assert followed > 0.8  # random order would follow it about half the time (2 of 4 other classes)
    random_pairs = [(int(s.labels[a[1]]), int(s.labels[b[1]]))
                    for s in build_streams(source, StreamRecipe(actions_per_stream=(3, 5), seed=1)).streams
                    for a, b in zip(s.parts, s.parts[1:], strict=False)]
    assert np.mean([b in script[a] for a, b in random_pairs]) < followed
    used = sorted(p[0] for s in streams.streams for p in s.parts)
    assert used == sorted(source.metadata["sample_id"])  # every sample still used exactly once
    assert streams.provenance["script"] == {str(c): list(n) for c, n in script.items()}
