"""zsar: zero-shot action recognition on cached embeddings."""

from __future__ import annotations

__version__ = "0.1.0"
