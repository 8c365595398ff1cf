from __future__ import annotations

import numpy as np
import pytest

from zsar.class_lists.class_text import builtin_class_text
from zsar.errors import ZsarError
from zsar.extract.text import (
    DEFAULT_TEMPLATES,
    PLAIN_VARIANTS,
    TextSources,
    build_prototypes,
    build_variants,
    class_texts,
    compose,
    embed_classes,
    ensemble_weights,
    readable_name,
    weights_digest,
)


def test_readable_names():
    assert readable_name("MoveBackwardsWhileDrilling") == "move backwards while drilling"
    assert readable_name("pick_up-box") == "pick up box"


def test_variants_produce_texts():
    assert class_texts(["walk"], "name") == [["walk"]]
    prompts = class_texts(["walk"], "prompts")[0]
    assert len(prompts) == len(DEFAULT_TEMPLATES) and all("walk" in p for p in prompts)
    with pytest.raises(ZsarError, match="exactly one"):
        class_texts(["walk"], "prompts", TextSources(templates=["no slot"]))
    for variant in ("description", "motion", "parts", "paraphrases"):
        with pytest.raises(ZsarError, match="needs class text"):
            class_texts(["walk"], variant)
    with pytest.raises(ZsarError, match="unknown text variant"):
        class_texts(["walk"], "poems")


def test_prototypes_are_unit_means_of_text_embeddings(text_encoder):
    names = ["raise left arm", "kick with right leg"]
    parts = [["raise an arm", "left arm"], ["kick", "right leg"]]
    protos = build_prototypes(text_encoder, [3, 7], names, "parts", TextSources(parts=parts, part_weights=[0.7, 0.3]))
    assert protos.vectors.shape == (2, 384) and protos.class_ids.tolist() == [3, 7]
    np.testing.assert_allclose(np.linalg.norm(protos.vectors, axis=1), 1, atol=1e-5)
    # fast path vs naive: embed each part alone and compose by hand
    single = text_encoder.embed(["kick", "right leg"])
    naive = 0.7 * single[0] + 0.3 * single[1]
    np.testing.assert_allclose(protos.vectors[1], naive / np.linalg.norm(naive), atol=1e-5)
    prompts = build_prototypes(text_encoder, [0, 1], names, "prompts")
    assert prompts.texts[0][1] == "a person raise left arm."
    # related actions are closer than unrelated ones
    sims = build_prototypes(text_encoder, [0, 1, 2], ["raise left arm", "raise right arm", "sit down"], "name").vectors
    assert sims[0] @ sims[1] > sims[0] @ sims[2]


def test_compose_rejects_bad_weights():
    with pytest.raises(ZsarError, match="non-negative weights"):
        compose(np.eye(2, dtype=np.float32), [1.0])


def test_class_text_variants_use_the_class_text_fields():
    texts = builtin_class_text("nw_ucla")
    names = [t.name for t in texts]
    sources = TextSources(class_text=texts)
    assert class_texts(names, "description", sources)[3] == [texts[3].description]
    assert class_texts(names, "motion", sources)[3] == [texts[3].motion]
    assert class_texts(names, "parts", sources)[3] == list(texts[3].parts)
    assert class_texts(names, "paraphrases", sources)[3] == ["walk around", *texts[3].paraphrases]
    # a description file given on its own overrides the class text's descriptions
    own = [[f"own text {i}"] for i in range(len(names))]
    assert class_texts(names, "description", TextSources(class_text=texts, descriptions=own))[3] == ["own text 3"]


def test_ensemble_is_the_weighted_mean_of_its_components(text_encoder):
    texts = builtin_class_text("nw_ucla")
    names = [t.name for t in texts]
    sources = TextSources(class_text=texts)
    weights = {"prompts": 1.0, "motion": 3.0}
    ensemble = build_prototypes(text_encoder, range(10), names, "ensemble", sources, weights)
    assert ensemble.view_names == ["prompts", "motion"] and ensemble.views.shape == (2, 10, 384)
    # naive: each component built alone, mixed by hand
    prompts = build_prototypes(text_encoder, range(10), names, "prompts", sources).vectors
    motion = build_prototypes(text_encoder, range(10), names, "motion", sources).vectors
    naive = prompts + 3 * motion
    naive /= np.linalg.norm(naive, axis=1, keepdims=True)
    np.testing.assert_allclose(ensemble.vectors, naive, atol=1e-5)
    np.testing.assert_allclose(ensemble.views[1], motion, atol=1e-6)
    assert ensemble.text_model_sha256 == text_encoder.weights_sha256 and len(ensemble.text_model_sha256) == 64
    # a subset keeps the views of its classes
    sub = ensemble.subset([4, 2])
    np.testing.assert_array_equal(sub.views, ensemble.views[:, [4, 2]])


def test_build_variants_embeds_each_plain_variant_once(text_encoder):
    texts = builtin_class_text("nw_ucla")
    names = [t.name for t in texts]
    sources = TextSources(class_text=texts)
    calls = []

    class Counting:
        name, weights_sha256 = text_encoder.name, text_encoder.weights_sha256

        def embed(self, batch):
            calls.append(len(batch))
            return text_encoder.embed(batch)

    built = build_variants(Counting(), range(10), names, ["ensemble", "motion", "prompts"], sources,
                           {"prompts": 1.0, "motion": 2.0})
    assert list(built) == ["ensemble", "motion", "prompts"] and len(calls) == 2  # the ensemble reused both
    alone = build_prototypes(text_encoder, range(10), names, "ensemble", sources, {"prompts": 1.0, "motion": 2.0})
    np.testing.assert_array_equal(built["ensemble"].vectors, alone.vectors)
    np.testing.assert_array_equal(built["ensemble"].views, alone.views)


def test_ensemble_weights_are_checked():
    assert ensemble_weights(None) == {"prompts": 1.0, "description": 1.0, "motion": 1.0, "paraphrases": 1.0}
    assert ensemble_weights({"prompts": 1, "motion": 0}) == {"prompts": 1.0}  # weight 0: not a component at all
    for bad in ({"poems": 1.0}, {}, {"motion": -1.0}, {"motion": 0.0}, {"motion": True}, {"motion": float("nan")},
                [1.0], "motion"):
        with pytest.raises(ZsarError, match="ensemble"):
            ensemble_weights(bad)


def test_part_weights_must_cover_every_part(text_encoder):
    texts = builtin_class_text("nw_ucla")
    names = [t.name for t in texts]
    longest = max(texts, key=lambda t: len(t.parts))
    with pytest.raises(ZsarError, match=f"part_weights has 2 weights but class {longest.name!r} has 3 parts"):
        build_prototypes(text_encoder, range(10), names, "parts", TextSources(class_text=texts, part_weights=[1, 1]))
    protos = build_prototypes(text_encoder, range(10), names, "parts",
                              TextSources(class_text=texts, part_weights=[0.5, 0.3, 0.2]))
    assert np.isfinite(protos.vectors).all()


def test_every_variant_embeds_every_builtin_class_list(text_encoder):
    for dataset in ("ntu60", "hri30", "synthetic"):
        for proto in embed_classes(dataset, [*PLAIN_VARIANTS, "ensemble"]):
            assert np.isfinite(proto.vectors).all() and proto.dim == 384
    # every class keeps its own prototype (MiniLM barely tells "left" from "right": cosine 0.9988 for the demo's
    # raise left / right arm motions, but not 1)
    motion = embed_classes("synthetic", ["motion"])[0].vectors
    assert (np.abs(motion @ motion.T - np.eye(16)) < 1 - 1e-4).all()


def test_weights_digest_follows_the_weight_bytes(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"abc")
    (tmp_path / "config.json").write_text("{}")
    first = weights_digest(tmp_path)
    (tmp_path / "config.json").write_text('{"x": 1}')
    assert weights_digest(tmp_path) == first  # not a weight file
    (tmp_path / "model.safetensors").write_bytes(b"abd")
    assert weights_digest(tmp_path) != first
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZsarError, match="no weight files"):
        weights_digest(tmp_path / "empty")

