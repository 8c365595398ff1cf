"""Fault injection on the cache writer: kill the writing process at every write-type system call (and fail one
with ENOSPC), rerun, and check that the published cache is the one an uninterrupted run writes. Prints JSON.

Runs a small deterministic write job in a child process under `strace -f -e inject=SYSCALL:...:when=N`, once
per (syscall, N) over every call the job makes, then reruns it without faults. Each point is tallied as
`identical` (the rerun published the reference content), `set_aside` (the rerun set a damaged partial aside
and started over, then published the reference content) or a failure kind (`wrong_content`, `rerun_failed`,
`damaged_published`: a cache readable at the final path right after the fault that differs from the reference;
`uncaught_error`: the faulted run ended with a traceback instead of a clear error; `stray_files`: files other
than the cache and its Parquet are left after the rerun).

    python benchmarks/fault_sweep.py [--rows 600] [--batch 50] [--syscalls pwrite64,write,...] [--every K]
                                     [--data ../shared/datasets/nw-ucla/all_sqe]   # the real extraction
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

SYSCALLS = ("pwrite64", "write", "fsync", "fallocate", "ftruncate", "rename", "unlink")
CLASSES = tuple(f"class {i}" for i in range(6))


def job_arrays(rows: int, dim: int = 24) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    labels = np.arange(rows) % len(CLASSES)
    meta = pd.DataFrame({"sample_id": [f"s{i:05d}" for i in range(rows)], "label": labels,
                         "class_name": [CLASSES[c] for c in labels], "split": np.where(np.arange(rows) % 4, "train",
                                                                                        "test"),
                         "source": "fault-sweep"})
    return meta, rng.normal(size=(rows, dim)).astype(np.float32), rng.normal(size=(rows, 3)).astype(np.float32)


def child(out: Path, rows: int, batch: int, data: str | None = None) -> None:
    """The write job: batches of rows, every 7th row failed, logits stored; then publish. With `data` (an NW-UCLA
    folder), the real extraction instead: skeleton statistics of its first `rows` samples."""
    from zsar.features import CacheHeader, CacheWriter

    if data:
        from zsar.datasets.nw_ucla import nw_ucla_source
        from zsar.extract.skeleton import extract_skeleton_stats

        extract_skeleton_stats(nw_ucla_source(data).subset(range(rows)), out, batch_size=batch, progress=False)
        return

    meta, x, logits = job_arrays(rows)
    header = CacheHeader(dataset="faults", modality="other", encoder="sweep", embedding_dim=x.shape[1],
                         class_names=CLASSES, dtype="float16", logit_classes=(0, 1, 2))
    with CacheWriter(out, header, meta) as writer:
        todo = writer.pending_rows()
        for start in range(0, len(todo), batch):
            block = todo[start : start + batch]
            good, bad = block[block % 7 != 3], block[block % 7 == 3]
            writer.write(good, x[good], logits[good])
            if bad.size:
                writer.fail(bad, [f"row {r} is broken on purpose" for r in bad])
        writer.finalize()


_DATA: list[str] = []  # the NW-UCLA folder of a real-extraction sweep (set by main)


def _child_command(out: Path, rows: int, batch: int) -> list[str]:
    return [sys.executable, __file__, "child", str(out), "--rows", str(rows), "--batch", str(batch),
            *(["--data", _DATA[0]] if _DATA else [])]


def _run_child(out: Path, rows: int, batch: int, inject: str | None = None) -> subprocess.CompletedProcess:
    command = _child_command(out, rows, batch)
    if inject:
        command = ["strace", "-f", "-o", "/dev/null", "-e", f"inject={inject}", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def count_calls(out: Path, rows: int, batch: int) -> Counter:
    """How many times the job makes each syscall (strace -c over a clean run)."""
    summary = out.parent / "strace.txt"
    command = ["strace", "-f", "-c", "-o", str(summary), "-e", "trace=" + ",".join(SYSCALLS),
               *_child_command(out, rows, batch)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    counts = Counter()
    for line in summary.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] in SYSCALLS and parts[3].isdigit():
            counts[parts[-1]] = int(parts[3])
    return counts


def snapshot(path: Path) -> dict | None:
    """What a reader gets from the published cache (None when there is none or it does not open)."""
    from zsar.errors import ZsarError
    from zsar.features import FeatureCache

    if not path.exists():
        return None
    try:
        cache = FeatureCache(path)
        cache.verify_all(fingerprint=True)
        loaded = cache.load()
    except ZsarError as exc:
        return {"error": str(exc)}
    parquet = path.with_suffix(".parquet")
    return {"fingerprint": cache.fingerprint, "embeddings": loaded.embeddings, "logits": loaded.logits,
            "status": cache.metadata["status"].tolist(), "errors": cache.metadata["error"].tolist(),
            "parquet": parquet.is_file() and pd.read_parquet(parquet).equals(cache.metadata)}


def same(a: dict | None, b: dict) -> bool:
    return (a is not None and "error" not in a and a["fingerprint"] == b["fingerprint"] and a["status"] == b["status"]
            and a["errors"] == b["errors"] and np.array_equal(a["embeddings"], b["embeddings"])
            and np.array_equal(a["logits"], b["logits"]))


def one_point(work: Path, reference: dict, inject: str, rows: int, batch: int) -> tuple[str, str]:
    out = work / "cache.h5"
    faulted = _run_child(out, rows, batch, inject)
    if faulted.returncode not in (0, 3, -9, 137):  # finished, a clear error, or killed
        return "uncaught_error", faulted.stderr.strip()[-300:]
    published = snapshot(out)
    if published is not None and not same(published, reference):
        return "damaged_published", str(published.get("error", "content differs"))
    rerun = _run_child(out, rows, batch)
    if rerun.returncode != 0:
        return "rerun_failed", rerun.stderr.strip().splitlines()[-1] if rerun.stderr.strip() else ""
    final = snapshot(out)
    if not same(final, reference) or not final["parquet"]:
        return "wrong_content", str(final.get("error", "content or parquet differs") if final else "no cache")
    aside = list(work.glob("cache.h5.partial.damaged-*"))
    stray = sorted(p.name for p in work.iterdir() if p.name not in ("cache.h5", "cache.parquet") and p not in aside)
    if stray:
        return "stray_files", " ".join(stray)
    return ("set_aside" if aside else "identical"), faulted.stderr.strip()[-200:]


def _points(counts: Counter, syscalls, every: int, enospc_every: int) -> list[tuple[str, int, str]]:
    points = []
    for name in syscalls:
        for n in range(1, counts.get(name, 0) + 1):
            if (n - 1) % every == 0:
                points.append((name, n, "signal=KILL"))
            if enospc_every and name in ("pwrite64", "write") and (n - 1) % enospc_every == 0:
                points.append((name, n, "error=ENOSPC"))
    return points


def sweep(rows: int = 600, batch: int = 50, syscalls=SYSCALLS, every: int = 1, enospc_every: int = 1,
          jobs: int = 1) -> dict:
    """Kill at every `every`-th call of each syscall, fail every `enospc_every`-th write with ENOSPC (0: never);
    `jobs` points run side by side."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for folder in ("ref", "count"):
            (base / folder).mkdir()
        if _run_child(base / "ref" / "cache.h5", rows, batch).returncode != 0:
            raise RuntimeError("the clean job failed")
        reference = snapshot(base / "ref" / "cache.h5")
        counts = count_calls(base / "count" / "cache.h5", rows, batch)
        points = _points(counts, syscalls, every, enospc_every)

        def run(point):
            name, n, action = point
            work = base / f"{name}-{n}-{action.split('=')[1]}"
            work.mkdir()
            try:
                return point, one_point(work, reference, f"{name}:{action}:when={n}", rows, batch)
            finally:
                shutil.rmtree(work, ignore_errors=True)

        with ThreadPoolExecutor(max(1, jobs)) as pool:
            results = list(pool.map(run, points))
    tally = Counter(outcome for _, (outcome, _) in results)
    failures = [{"syscall": name, "call": n, "action": action, "outcome": outcome, "detail": detail[-300:]}
                for (name, n, action), (outcome, detail) in results if outcome not in ("identical", "set_aside")]
    job = f"NW-UCLA statistics extraction ({_DATA[0]})" if _DATA else "synthetic rows with logits and failed rows"
    return {"job": job, "rows": rows, "batch": batch, "calls": dict(counts), "points": len(points),
            "tally": dict(tally), "failures": failures, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="sweep", choices=("sweep", "child"))
    parser.add_argument("out", nargs="?")
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--syscalls", default=",".join(SYSCALLS))
    parser.add_argument("--every", type=int, default=1, help="kill at every K-th call only")
    parser.add_argument("--enospc-every", type=int, default=1, help="ENOSPC at every K-th write (0: never)")
    parser.add_argument("--jobs", type=int, default=2, help="points run side by side")
    parser.add_argument("--data", help="an NW-UCLA folder: sweep the real statistics extraction of its samples")
    args = parser.parse_args()
    if args.mode == "child":
        from zsar.errors import ZsarError

        try:
            child(Path(args.out), args.rows, args.batch, args.data)
        except ZsarError as exc:  # the clear error a fault must give; anything else is a traceback, exit 1
            print(f"ZsarError: {exc}", file=sys.stderr)
            sys.exit(3)
        return
    if args.data:
        _DATA.append(str(Path(args.data).resolve()))
    if shutil.which("strace") is None:
        sys.exit("strace is not installed: the sweep needs it")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    print(json.dumps(sweep(args.rows, args.batch, args.syscalls.split(","), args.every, args.enospc_every,
                           args.jobs), indent=2))


if __name__ == "__main__":
    main()
