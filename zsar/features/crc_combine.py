"""Checking many rows' crc32 values with one crc32 call over their bytes.

zlib's crc32 is linear over GF(2): the crc of A followed by B is crc(B) XOR crc(A) advanced over len(B) zero
bytes, and advancing is a fixed 32 x 32 bit matrix for a given length. Rows of one array have one length, so
the crc of 2^j consecutive rows follows from their row crcs by j rounds of pairing, each round one matrix
(applied to a whole numpy array through four 256-entry tables). A block of rows is then checked by one
`zlib.crc32` over its bytes (which releases the GIL, so blocks are checked on several cores) instead of one
call per row. A mismatching block is re-checked row by row to name the rows.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

_POLY = 0xEDB88320  # crc32's polynomial, bit-reflected


def _apply(matrix: tuple[int, ...], vector: int) -> int:
    out, bit = 0, 0
    while vector:
        if vector & 1:
            out ^= matrix[bit]
        vector >>= 1
        bit += 1
    return out


def _compose(outer: tuple[int, ...], inner: tuple[int, ...]) -> tuple[int, ...]:
    """The matrix of `outer` after `inner`."""
    return tuple(_apply(outer, column) for column in inner)


@lru_cache(maxsize=1024)
def _advance(num_bytes: int) -> tuple[int, ...]:
    """The matrix that advances a crc over `num_bytes` zero bytes (columns: images of the 32 unit vectors)."""
    if num_bytes == 0:
        return tuple(1 << i for i in range(32))
    if num_bytes == 1:
        one_bit = (_POLY,) + tuple(1 << (i - 1) for i in range(1, 32))
        matrix = one_bit
        for _ in range(3):  # 1 -> 2 -> 4 -> 8 zero bits
            matrix = _compose(matrix, matrix)
        return matrix
    half = _advance(num_bytes // 2)
    matrix = _compose(half, half)
    return _compose(_advance(1), matrix) if num_bytes % 2 else matrix


@lru_cache(maxsize=64)
def _tables(num_bytes: int) -> np.ndarray:
    """[4, 256] uint32: the advance over `num_bytes` of every value of each of a crc's four bytes."""
    matrix = _advance(num_bytes)
    return np.array([[_apply(matrix, b << (8 * j)) for b in range(256)] for j in range(4)], dtype=np.uint32)


def advance(crcs: np.ndarray, num_bytes: int) -> np.ndarray:
    """Every crc advanced over `num_bytes` zero bytes."""
    t = _tables(num_bytes)
    c = crcs.astype(np.uint32, copy=False)
    return t[0][c & 0xFF] ^ t[1][(c >> 8) & 0xFF] ^ t[2][(c >> 16) & 0xFF] ^ t[3][c >> 24]


def combine_rows(row_crcs: np.ndarray, row_bytes: int) -> np.ndarray:
    """[M, 2^j] crcs of consecutive rows of `row_bytes` each -> [M] crcs of each group of 2^j rows."""
    crcs, length = np.asarray(row_crcs, dtype=np.uint32), row_bytes
    if crcs.shape[1] & (crcs.shape[1] - 1):
        raise ValueError("rows per group must be a power of two")
    while crcs.shape[1] > 1:
        crcs = advance(crcs[:, 0::2], length) ^ crcs[:, 1::2]
        length *= 2
    return crcs[:, 0]


def power_of_two_pieces(count: int, largest: int) -> list[tuple[int, int]]:
    """(start, size) pieces covering range(count), each a power of two no larger than `largest` (also one)."""
    pieces, start = [], 0
    while start < count:
        size = largest
        while size > count - start:
            size //= 2
        pieces.append((start, size))
        start += size
    return pieces


def block_matches(block: np.ndarray, row_crcs: np.ndarray) -> bool:
    """Whether the rows of `block` ([n, ...], n a power of two, C-contiguous) have the crcs `row_crcs` [n]."""
    data = block.reshape(len(block), -1).view(np.uint8)
    expected = combine_rows(row_crcs[None, :], data.shape[1])[0]
    return zlib.crc32(data) == int(expected)
