"""torch's process-wide settings are scoped to the work that sets them: seeds, threads, denormal flushing."""

from __future__ import annotations

import numpy as np
import torch

from zsar.compute import torch_scope
from zsar.features.prototypes import ClassPrototypes
from zsar.heads import build_head, stream_heads


def _draw_after(work) -> torch.Tensor:
    torch.manual_seed(123)
    work()
    return torch.rand(4)


def test_the_scope_restores_the_generator_and_the_thread_count():
    before = torch.get_num_threads()

    def seeding():
        with torch_scope(threads=1, flush_denormal=True):
            torch.manual_seed(5)
            torch.rand(10)
            assert torch.get_num_threads() == 1

    assert torch.equal(_draw_after(seeding), _draw_after(lambda: None))
    assert torch.get_num_threads() == before
    unscoped = _draw_after(lambda: torch.manual_seed(5))
    assert not torch.equal(unscoped, _draw_after(lambda: None))  # the test can fail: unscoped seeding shows


def test_training_a_head_leaves_the_global_generator_as_it_was():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    y = np.repeat(np.arange(4), 10)
    protos = ClassPrototypes(np.arange(4), list("abcd"), np.eye(4, 5, dtype=np.float32), "names",
                             [[c] for c in "abcd"], "toy")
    head = build_head("linear_projection", {"epochs": 2})
    assert torch.equal(_draw_after(lambda: head.fit(x, y, protos, seed=7)), _draw_after(lambda: None))
    streams = [stream_heads.Stream("s", "train", np.array([0, 0, 1, 1]), rng.normal(size=(4, 6)).astype(np.float32))]
    stream_head = stream_heads.make_stream_head("mstcn", {"epochs": 1, "layers": 1, "channels": 4})
    assert torch.equal(_draw_after(lambda: stream_head.fit(streams, protos)), _draw_after(lambda: None))
