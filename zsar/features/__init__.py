"""The cache contract: the only code that reads or writes feature caches and prototype files."""

from __future__ import annotations

from zsar.features.info import cache_summary, format_summary
from zsar.features.prototypes import ClassPrototypes, load_prototypes, save_prototypes
from zsar.features.reader import FeatureCache, FeatureSet
from zsar.features.schema import SCHEMA_VERSION, CacheHeader, config_hash
from zsar.features.writer import CacheWriter, write_cache

__all__ = [
    "SCHEMA_VERSION",
    "CacheHeader",
    "CacheWriter",
    "ClassPrototypes",
    "FeatureCache",
    "FeatureSet",
    "cache_summary",
    "config_hash",
    "format_summary",
    "load_prototypes",
    "save_prototypes",
    "write_cache",
]
