from __future__ import annotations

import numpy as np
import pytest

from zsar.errors import ZsarError
from zsar.extract.text import DEFAULT_TEMPLATES, build_prototypes, class_texts, compose, readable_name


def test_readable_names():
    assert readable_name("MoveBackwardsWhileDrilling") == "move backwards while drilling"
    assert readable_name("pick_up-box") == "pick up box"


def test_variants_produce_texts():
    assert class_texts(["walk"], "name") == [["walk"]]
    prompts = class_texts(["walk"], "prompts")[0]
    assert len(prompts) == len(DEFAULT_TEMPLATES) and all("walk" in p for p in prompts)
    with pytest.raises(ZsarError, match="exactly one"):
        class_texts(["walk"], "prompts", templates=["no slot"])
    with pytest.raises(ZsarError, match="needs descriptions"):
        class_texts(["walk"], "description")
    with pytest.raises(ZsarError, match="unknown text variant"):
        class_texts(["walk"], "poems")


def test_prototypes_are_unit_means_of_text_embeddings(text_encoder):
    names = ["raise left arm", "kick with right leg"]
    parts = [["raise an arm", "left arm"], ["kick", "right leg"]]
    protos = build_prototypes(text_encoder, [3, 7], names, "parts", parts=parts, part_weights=[0.7, 0.3])
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
    with pytest.raises(ZsarError, match="positive weights"):
        compose(np.eye(2, dtype=np.float32), [1.0])
