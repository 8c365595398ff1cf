import numpy as np
import pytest

from zsar.extract.isolation import encode_isolating


def encoder(poison: set[int]):
    calls = []

    def encode(positions):
        calls.append(list(positions))
        if poison & set(positions):
            raise ValueError("overflow in the network")
        return np.asarray(positions, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32), None

    return encode, calls


def test_a_sample_that_breaks_its_batch_is_found_and_failed_alone():
    encode, calls = encoder({2})
    rows, (embeddings, logits), failed = encode_isolating(encode, [10, 11, 12, 13])
    assert rows == [10, 11, 13] and failed == [(12, "ValueError: overflow in the network")]
    np.testing.assert_array_equal(embeddings[:, 0], [0, 1, 3])  # equal to encoding each alone
    assert logits is None and calls[0] == [0, 1, 2, 3]


def test_a_clean_batch_runs_once():
    encode, calls = encoder(set())
    rows, (embeddings, _), failed = encode_isolating(encode, [5, 6])
    assert rows == [5, 6] and failed == [] and calls == [[0, 1]]


def test_a_fault_of_every_sample_alike_is_raised_not_recorded():
    encode, _ = encoder({0, 1, 2})
    with pytest.raises(ValueError, match="overflow"):
        encode_isolating(encode, [1, 2, 3])


def test_outputs_of_the_wrong_shape_fail_the_sample():
    def encode(positions):
        return np.stack([np.zeros(4 if p == 1 else 3) for p in positions]) if 1 not in positions or len(
            positions) == 1 else np.zeros((len(positions), 7)), None

    def check(outputs):
        if outputs[0].shape[1] != 3:
            raise ValueError(f"{outputs[0].shape[1]}-d")

    rows, (embeddings, _), failed = encode_isolating(encode, [0, 1, 2], check=check)
    assert rows == [0, 2] and failed == [(1, "ValueError: 4-d")] and embeddings.shape == (2, 3)


def test_a_batch_of_one_fails_its_sample_but_device_errors_stop_the_run():
    encode, _ = encoder({0})
    rows, outputs, failed = encode_isolating(encode, [7])
    assert rows == [] and outputs is None and failed == [(7, "ValueError: overflow in the network")]

    def out_of_memory(positions):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    for batch in ([7], [7, 8]):
        with pytest.raises(RuntimeError, match="out of memory"):
            encode_isolating(out_of_memory, batch)
