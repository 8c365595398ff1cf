"""HDF5 file primitives of the cache writer: how files are opened, how arrays are laid out, space, syncing."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from zsar.errors import ZsarError


def open_for_writing(path: Path, create: bool) -> h5py.File:
    """An HDF5 file in the cache format (HDF5 1.8: checksummed metadata) whose raw-data writes are never deferred
    (no sieve buffer): a failed write raises at the call, not later in a destructor where h5py can only print it."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V18, h5py.h5f.LIBVER_V18)
    fapl.set_sieve_buf_size(0)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
    name = os.fsencode(path)
    if not create:
        return h5py.File(h5py.h5f.open(name, h5py.h5f.ACC_RDWR, fapl=fapl))
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_attr_phase_change(64, 48)  # attributes stay in the checksummed object header, not a dense heap
    return h5py.File(h5py.h5f.create(name, h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl))


def contiguous_dataset(h5: h5py.File, name: str, shape: tuple, dtype) -> h5py.Dataset:
    """A contiguous dataset whose space is allocated now and never pre-filled: row writes touch only data."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    space = h5py.h5s.create_simple(tuple(int(s) for s in shape))
    h5py.h5d.create(h5.id, name.encode(), h5py.h5t.py_create(np.dtype(dtype)), space, dcpl=dcpl)
    return h5[name]


def reserve_space(path: Path) -> None:
    """Allocate the file's full size on disk now, so a full disk is found before any work."""
    size = path.stat().st_size
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (getattr(os, "EOPNOTSUPP", 95), 22):  # file system without fallocate: space is not reserved
            return
        stat = os.statvfs(path.parent)
        raise ZsarError(f"cannot reserve {size / 1e6:.1f} MB for the cache ({exc.strerror}; "
                        f"{stat.f_bavail * stat.f_frsize / 1e6:.1f} MB free). Free disk space or write elsewhere",
                        path) from exc
    finally:
        os.close(fd)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
