"""Read a TensorFlow tensor-bundle checkpoint (``.index`` + ``.data-*``) without TensorFlow.

Dev tool for :mod:`tools.musicnn_convert`. Written from the published format descriptions:

- the ``.index`` file is a LevelDB-format sorted table (SSTable): data blocks of
  prefix-compressed key/value entries, an index block pointing at them, and a 48-byte
  footer ending in a magic number;
- its keys are tensor names (the empty key holds a header), its values are
  ``BundleEntryProto`` protobuf messages giving dtype, shape, shard, byte offset and size;
- the ``.data-00000-of-00001`` file is the raw little-endian tensor bytes, back to back.

Only the subset the musicnn checkpoints use is supported: uncompressed blocks, one shard,
whole (unsliced) numeric tensors. Anything else is an error that says so.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c
# tensorflow/core/framework/types.proto DataType values → numpy dtypes.
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_, 19: np.float16}


class CheckpointFormatError(ValueError):
    """Bytes that do not follow the tensor-bundle format (or a part of it we do not read)."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A base-128 varint at ``pos``: (value, position after it)."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def parse_protobuf(buf: bytes) -> dict[int, list[int | bytes]]:
    """Field number → values of a protobuf message (varints as int, length-delimited as
    bytes, fixed32/fixed64 as int). Enough for the flat messages of a bundle."""
    fields: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value = buf[pos : pos + length]
            pos += length
        elif wire == 5:
            (value,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        else:
            raise CheckpointFormatError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def read_block(table: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of the block at ``offset`` (``size`` excludes the trailer)."""
    if offset + size + BLOCK_TRAILER_SIZE > len(table):
        raise CheckpointFormatError("block handle points past the end of the index file")
    compression = table[offset + size]
    if compression != 0:
        raise CheckpointFormatError(f"compressed table blocks (type {compression}) are not read")
    block = table[offset : offset + size]
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * num_restarts  # entries stop where the restart array starts
    entries = []
    key = b""
    pos = 0
    while pos < end:
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def read_table(path: Path) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of an SSTable file, in key order."""
    table = path.read_bytes()
    if len(table) < FOOTER_SIZE:
        raise CheckpointFormatError(f"{path} is too short to be a table")
    (magic,) = struct.unpack_from("<Q", table, len(table) - 8)
    if magic != TABLE_MAGIC:
        raise CheckpointFormatError(f"{path} does not end in the table magic number")
    footer = table[len(table) - FOOTER_SIZE :]
    _meta_offset, pos = read_varint(footer, 0)
    _meta_size, pos = read_varint(footer, pos)
    index_offset, pos = read_varint(footer, pos)
    index_size, _ = read_varint(footer, pos)
    entries = []
    for _last_key, handle in read_block(table, index_offset, index_size):
        offset, pos = read_varint(handle, 0)
        size, _ = read_varint(handle, pos)
        entries.extend(read_block(table, offset, size))
    return entries


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives in the data file."""

    dtype: type
    shape: tuple[int, ...]
    offset: int
    size: int


def parse_entry(name: str, value: bytes) -> BundleEntry:
    fields = parse_protobuf(value)
    dtype_code = int(fields.get(1, [0])[0])
    if dtype_code not in DTYPES:
        raise CheckpointFormatError(f"tensor {name!r} has unsupported dtype code {dtype_code}")
    if int(fields.get(3, [0])[0]) != 0 or 7 in fields:
        raise CheckpointFormatError(f"tensor {name!r} is sharded or sliced; not supported")
    shape: list[int] = []
    for shape_msg in fields.get(2, []):
        for dim in parse_protobuf(bytes(shape_msg)).get(2, []):
            shape.append(int(parse_protobuf(bytes(dim)).get(1, [0])[0]))
    return BundleEntry(
        dtype=DTYPES[dtype_code],
        shape=tuple(shape),
        offset=int(fields.get(4, [0])[0]),
        size=int(fields.get(5, [0])[0]),
    )


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """All tensors of the checkpoint whose files are ``{prefix}.index`` and
    ``{prefix}.data-00000-of-00001`` (musicnn's prefix is the folder itself plus ``/``,
    so its files are named ``.index`` and ``.data-00000-of-00001``)."""
    prefix = str(prefix)
    index = Path(prefix + ".index")
    data_path = Path(prefix + ".data-00000-of-00001")
    if not index.is_file() or not data_path.is_file():
        raise FileNotFoundError(f"no tensor bundle at {prefix!r} ({index} and {data_path})")
    data = data_path.read_bytes()
    tensors = {}
    for key, value in read_table(index):
        if key == b"":  # the BundleHeaderProto
            header = parse_protobuf(value)
            if int(header.get(1, [1])[0]) != 1:
                raise CheckpointFormatError("multi-shard bundles are not supported")
            if int(header.get(2, [0])[0]) != 0:
                raise CheckpointFormatError("big-endian bundles are not supported")
            continue
        name = key.decode()
        entry = parse_entry(name, value)
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * np.dtype(entry.dtype).itemsize != entry.size:
            raise CheckpointFormatError(
                f"tensor {name!r}: {entry.size} bytes do not hold shape {entry.shape}"
            )
        if entry.offset + entry.size > len(data):
            raise CheckpointFormatError(f"tensor {name!r} runs past the end of {data_path}")
        array = np.frombuffer(data, entry.dtype, count, entry.offset).reshape(entry.shape)
        tensors[name] = array.copy()
    return tensors
