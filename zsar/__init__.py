"""zsar: zero-shot action recognition on cached embeddings."""

from __future__ import annotations

from zsar.compute import passive_waits

passive_waits()  # before any torch import starts an OpenMP pool (zsar/compute.py says why)

__version__ = "0.1.0"
