"""Reader for the IDX format of MNIST-style data sets (optionally gzip-compressed).

Reads the whole file into one uint8 tensor; checks the magic number, the
dimensions against the expected ones and the exact payload size, so that a
truncated or wrong file gives a clear error instead of garbage batches. Gzip's
own CRC check catches corruption inside the compressed stream.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import DataCorruptError

_UBYTE = 0x08


def read_idx(path: Path, expected_shape: tuple[int, ...], sha256: str | None = None) -> torch.Tensor:
    """Load an IDX file of unsigned bytes with shape ``expected_shape``."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataCorruptError(f"{path}: cannot be read ({exc}); delete it and fetch the data set again") from None
    if len(raw) < 4:
        raise DataCorruptError(f"{path}: file is empty or truncated ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != _UBYTE or ndim != len(expected_shape):
        raise DataCorruptError(
            f"{path}: not an IDX file of {len(expected_shape)}-d unsigned bytes (header {raw[:4].hex()})"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataCorruptError(f"{path}: header truncated ({len(raw)} bytes, the header alone needs {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if tuple(dims) != tuple(expected_shape):
        raise DataCorruptError(f"{path}: dimensions {tuple(dims)}, expected {tuple(expected_shape)}")
    expected_bytes = header + int(np.prod(dims))
    if len(raw) != expected_bytes:
        raise DataCorruptError(f"{path}: {len(raw)} bytes, expected {expected_bytes}; the file is truncated or padded")
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise DataCorruptError(f"{path}: content checksum does not match the published data set; fetch it again")
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as (gzip-compressed if ``.gz``) IDX; used by test fixtures."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = struct.pack(">HBB", 0, _UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh:
        fh.write(payload)
