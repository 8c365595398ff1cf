"""A sample source: a metadata table plus a loader for one sample's data, loaded lazily."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class SampleSource:
    """`metadata` has one row per sample (sample_id, label, class_name, split, source, extras);
    `load(i)` returns sample i's data (skeletons: keypoints [M, T, V, C]; videos: the file's path) or raises
    on bad input. `class_ids`: a dataset's official class ids when they are not the label indices (HRI30's
    classInd numbers from 1). `provenance`: how the data was read, recorded in the cache header (e.g. a pickle
    loaded with the full unpickler because the user trusted it)."""

    name: str
    class_names: list[str]
    metadata: pd.DataFrame
    load: Callable[[int], np.ndarray]
    modality: str = "skeleton"
    layout: str | None = None
    class_ids: list[int] | None = None
    provenance: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.metadata)

    def subset(self, rows) -> SampleSource:
        """The samples at `rows` (positions), in that order, as a source of their own."""
        rows = [int(r) for r in rows]
        meta = self.metadata.iloc[rows].reset_index(drop=True)
        return SampleSource(self.name, self.class_names, meta, lambda i: self.load(rows[i]), self.modality,
                            self.layout, self.class_ids, self.provenance)
