"""A readable summary of a cache: schema, identity, counts per split and class, failures."""

from __future__ import annotations

from pathlib import Path

from zsar.features.publish import parquet_state
from zsar.features.reader import FeatureCache


def cache_summary(path: str | Path, max_failures: int = 10, verify: bool = True) -> dict:
    """Everything `zsar cache info` shows, as a JSON-serialisable dict. With `verify`, every ok row is checked
    against its checksum first (a damaged file is an error naming it). The sibling Parquet copy is reported as
    missing or stale, not changed (the next write of this cache rebuilds it)."""
    cache = FeatureCache(path)
    checked = cache.verify_all() if verify else None
    meta, header = cache.metadata, cache.header
    failed = meta[meta["status"] == "failed"]
    ok = meta[meta["status"] == "ok"]
    per_class = (
        ok.groupby(["label", "split"]).size().unstack(fill_value=0).sort_index()
    )
    return {
        "path": str(cache.path),
        "schema_version": cache.schema_version,
        "parquet": parquet_state(cache.path),
        "verified": None if checked is None else (
            f"{checked['rows_checked']} ok rows match their checksums" if checked["checksums"]
            else "no row checksums in this schema version"),
        "zsar_version": cache.zsar_version,
        "created": cache.created,
        "fingerprint": cache.fingerprint,
        "dataset": header.dataset,
        "modality": header.modality,
        "encoder": header.encoder,
        "config_hash": header.config_hash,
        "checkpoint_sha256": header.checkpoint_sha256,
        "trained_classes": None if header.trained_classes is None else list(header.trained_classes),
        "embedding_dim": header.embedding_dim,
        "dtype": header.dtype,
        "logits": cache.has_logits,
        "temporal_length": header.temporal_length,
        "normalisation": header.normalisation,
        "preprocessing": header.preprocessing,
        "rows": cache.num_rows,
        "ok": int((meta["status"] == "ok").sum()),
        "failed": int(len(failed)),
        "splits": {str(k): int(v) for k, v in ok["split"].value_counts().sort_index().items()},
        "per_class": {
            f"{int(label)} {header.class_names[int(label)] if 0 <= int(label) < len(header.class_names) else '?'}": {
                str(s): int(n) for s, n in row.items()
            }
            for label, row in per_class.iterrows()
        },
        "failures": [
            {"sample_id": r.sample_id, "error": r.error} for r in failed.head(max_failures).itertuples()
        ],
        "streams": _stream_summary(meta, header),
    }


def _stream_summary(meta, header) -> dict | None:
    """For a per-frame cache: streams, frames per split, length range, background classes, window and stride."""
    if header.frames is None:
        return None
    first = meta.drop_duplicates("stream_id")
    lengths = meta.groupby("stream_id", sort=False).size()
    ok = meta[meta["status"] == "ok"]
    return {
        "count": int(len(first)),
        "failed": int(meta.loc[meta["status"] == "failed", "stream_id"].nunique()),
        "per_split": {str(k): int(v) for k, v in first["split"].value_counts().sort_index().items()},
        "frames": {str(k): int(v) for k, v in ok["split"].value_counts().sort_index().items()},
        "length": [int(lengths.min()), int(lengths.max())],
        "background": [header.class_names[b] for b in header.frames["background"]],
        "frame_rate": header.frames["frame_rate"],
        "window": header.frames["window"],
        "stride": header.frames["stride"],
    }


def format_summary(summary: dict) -> str:
    """Plain-text rendering for the terminal."""
    lines = [
        f"cache        {summary['path']}",
        f"schema       v{summary['schema_version']} (written by zsar {summary['zsar_version']}, {summary['created']})",
        f"fingerprint  {summary['fingerprint']}",
        f"verified     {summary['verified'] or 'not checked (--no-verify)'}",
        f"parquet      {summary['parquet']}",
        f"dataset      {summary['dataset']}  modality {summary['modality']}",
        f"encoder      {summary['encoder']}  config {summary['config_hash'][:12]}  "
        f"checkpoint {summary['checkpoint_sha256'] or '-'}",
        f"trained on   {summary['trained_classes'] if summary['trained_classes'] is not None else 'no class labels'}",
        f"embeddings   {summary['rows']} x {summary['embedding_dim']} {summary['dtype']}"
        f"{'  + logits' if summary['logits'] else ''}"
        f"{'  + temporal T=' + str(summary['temporal_length']) if summary['temporal_length'] else ''}",
        f"rows         {summary['ok']} ok, {summary['failed']} failed",
        "splits       " + ", ".join(f"{k}: {v}" for k, v in summary["splits"].items()),
        "per class:",
    ]
    lines += [f"  {name:<40} " + "  ".join(f"{s}={n}" for s, n in counts.items())
              for name, counts in summary["per_class"].items()]
    streams = summary.get("streams")
    if streams:
        lines.append(f"streams      {streams['count']} ({streams['failed']} failed), "
                     + ", ".join(f"{k}: {v}" for k, v in streams["per_split"].items())
                     + f"; {streams['length'][0]}-{streams['length'][1]} frames each; frames per split "
                     + ", ".join(f"{k}: {v}" for k, v in streams["frames"].items()))
        lines.append(f"frames       background {streams['background'] or 'none'}, rate {streams['frame_rate'] or '?'}"
                     f" fps, window {streams['window'] or 1}, stride {streams['stride']}")
    if summary["failures"]:
        lines.append("failures:")
        lines += [f"  {f['sample_id']}: {f['error']}" for f in summary["failures"]]
    return "\n".join(lines)
