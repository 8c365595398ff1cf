"""The direct, threaded row reads and their block checks against naive h5py reads and per-row checks."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from zsar.features import row_reader
from zsar.features.crc_combine import combine_rows, power_of_two_pieces
from zsar.features.fingerprint import row_crc32
from zsar.features.row_reader import nonfinite_rows, read_rows


def test_combined_crc_equals_crc_of_the_concatenated_rows():
    rng = np.random.default_rng(0)
    for row_bytes, rows in [(1, 2), (6, 8), (1536, 64), (10, 1)]:
        data = rng.integers(0, 256, (3, rows, row_bytes), dtype=np.uint8)
        sums = np.array([[zlib.crc32(r) for r in group] for group in data], dtype=np.uint32)
        assert combine_rows(sums, row_bytes).tolist() == [zlib.crc32(group.tobytes()) for group in data]
    with pytest.raises(ValueError):
        combine_rows(np.zeros((1, 3), np.uint32), 4)
    assert power_of_two_pieces(13, 4) == [(0, 4), (4, 4), (8, 4), (12, 1)]
    assert power_of_two_pieces(7, 8) == [(0, 4), (4, 2), (6, 1)]


def _file(tmp_path, values, **dataset_options):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("x", data=values, **dataset_options)
    return path


@pytest.mark.parametrize("options", [{}, {"chunks": (7, 5)}, {"compression": "gzip"}])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_reads_equal_naive_h5py_for_any_selection(tmp_path, monkeypatch, options, dtype):
    monkeypatch.setattr(row_reader, "BLOCK_BYTES", 64)  # many small blocks, read on several threads
    rng = np.random.default_rng(1)
    values = rng.normal(size=(203, 5)).astype(dtype)
    path = _file(tmp_path, values, **options)
    sums = row_crc32(values)
    selections = [np.arange(203), np.arange(10, 150), np.flatnonzero(rng.random(203) < 0.3), np.array([202]),
                  np.zeros(0, np.int64)]
    with h5py.File(path, "r") as h5:
        for rows in selections:
            for out_dtype in (None, np.float32):
                got = read_rows(path, h5["x"], rows, sums[rows], out_dtype, check_finite=True, workers=3)
                expected = h5["x"][...][rows].astype(out_dtype or dtype)
                assert got.values.dtype == expected.dtype
                np.testing.assert_array_equal(got.values, expected)
                assert got.mismatched.size == 0 and got.nonfinite.size == 0


def test_damaged_and_nonfinite_rows_are_named_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(row_reader, "BLOCK_BYTES", 80)
    values = np.random.default_rng(2).normal(size=(100, 10)).astype(np.float16)
    sums = row_crc32(values)
    values[[3, 64, 99], 1] += 1  # bytes that no longer match their checksums
    values[[5, 70], 2] = [np.inf, np.nan]
    path = _file(tmp_path, values)
    rows = np.arange(1, 100)
    with h5py.File(path, "r") as h5:
        got = read_rows(path, h5["x"], rows, sums[rows], check_finite=True)
    assert sorted(rows[got.mismatched].tolist()) == [3, 5, 64, 70, 99]
    assert sorted(rows[got.nonfinite].tolist()) == [5, 70]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_nonfinite_rows_from_exponent_bits_equal_isfinite(dtype):
    values = np.random.default_rng(3).normal(size=(50, 4)).astype(dtype)
    values[[2, 9, 30], [0, 3, 1]] = [np.inf, -np.inf, np.nan]
    values[11, 0] = np.finfo(dtype).max  # largest finite: not flagged
    np.testing.assert_array_equal(nonfinite_rows(values), np.flatnonzero(~np.isfinite(values).all(axis=1)))
