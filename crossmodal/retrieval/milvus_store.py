"""Milvus as a second vector backend behind the same store interface.

The INDEX_DIR stays the handle users pass around (``crossmodal index --out``,
``Recommender.load``): it keeps the versioned SQLite catalog (item metadata, windows)
and the local faiss files as before. :func:`publish_to_milvus` mirrors the vectors of
the published version into one Milvus collection per modality, named after the
version, and only when every collection is inserted, flushed, indexed and loaded does
it name that version in ``INDEX_DIR/MILVUS`` (written atomically). Readers
(:class:`MilvusStore`) follow ``MILVUS``, not ``CURRENT``: they open the catalog of the
version it names and send vector searches to its collections, so a reader never sees a
half-mirrored version. Collections of versions other than the newest two are dropped
(a reader still searching one of those gets an error and must :meth:`refresh`; the local
store keeps such readers working from memory, Milvus cannot).

The same client code talks to an embedded ``milvus-lite`` database (a file path as the
URI, for tests and one machine) and to a Milvus server or cluster
(``http://host:19530``): pass either to ``crossmodal index --store milvus:URI``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.fileio import atomic_write_text
from crossmodal.retrieval.catalog import Catalog
from crossmodal.retrieval.errors import StoreError, StoreNotFoundError
from crossmodal.retrieval.index_params import IndexParams
from crossmodal.retrieval.layout import CATALOG, VERSIONS, Pointer, read_pointer
from crossmodal.retrieval.records import MODALITIES
from crossmodal.retrieval.snapshot import StoreSnapshot
from crossmodal.retrieval.store import IndexStore
from crossmodal.retrieval.vector_index import VectorIndex

log = logging.getLogger(__name__)

MILVUS_POINTER = "MILVUS"
STORE_PREFIX = "milvus:"
# Milvus refuses a larger top-k in one search.
_MAX_TOPK = 16384
_INSERT_BATCH = 4096


def _client(uri: str) -> Any:
    # gRPC's C core writes its connection chatter (GOAWAY, keepalive) straight to stderr;
    # a user's own setting wins.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError as err:
        raise StoreError(
            "the Milvus backend needs pymilvus (and milvus-lite for a local file): "
            "pip install 'crossmodal[milvus]'"
        ) from err
    try:
        return MilvusClient(uri)
    except MilvusException as err:
        if "://" not in uri:
            raise StoreError(
                f"cannot open the milvus-lite database {uri}: {err.message}. milvus-lite serves "
                "one process at a time (is another one using it?); for several processes or "
                "machines use a Milvus server URI (milvus:http://HOST:19530)"
            ) from err
        raise StoreError(f"cannot reach Milvus at {uri}: {err.message}") from err


def parse_store(spec: str | None) -> str | None:
    """The Milvus URI of a ``--store`` value: ``milvus:URI`` → URI, ``faiss``/None → None."""
    if spec is None or spec == "faiss":
        return None
    if not spec.startswith(STORE_PREFIX) or len(spec) == len(STORE_PREFIX):
        raise StoreError(
            f"--store must be 'faiss' or 'milvus:PATH_OR_URI' (e.g. milvus:./lib.db or "
            f"milvus:http://localhost:19530), got {spec!r}"
        )
    uri = spec[len(STORE_PREFIX) :]
    if "://" not in uri:  # a milvus-lite file: absolute, so readers elsewhere find it
        uri = str(Path(uri).expanduser().resolve())
    return uri


def collection_name(root: Path, version: str, modality: str) -> str:
    """Collection of one version and modality; the prefix keeps stores in one server apart."""
    tag = re.sub(r"[^A-Za-z0-9_]", "_", root.resolve().name)[:40] or "store"
    return f"crossmodal_{tag}_v{version}_{modality}"


def publish_to_milvus(root: str | os.PathLike[str], uri: str) -> str:
    """Mirror the published version of ``root`` into Milvus at ``uri``; returns the version.

    Index type: FLAT (exact) when the local index is flat, else HNSW with the local
    graph's M/efConstruction and the efSearch the local tuning chose.
    """
    root = Path(root)
    pointer = read_pointer(root)
    if pointer is None:
        raise StoreNotFoundError(f"{root} has no published version to send to Milvus")
    client = _client(uri)
    try:
        version_dir = root / VERSIONS / pointer.version
        names = {}
        for modality in MODALITIES:
            index = VectorIndex.load(version_dir / modality)
            name = collection_name(root, pointer.version, modality)
            _create_collection(client, name, index)
            names[modality] = name
        previous = _read_milvus_pointer(root)
        atomic_write_text(
            root / MILVUS_POINTER,
            json.dumps({"uri": uri, "version": pointer.version, "collections": names}, indent=2)
            + "\n",
        )
        keep = {pointer.version, previous["version"] if previous else None}
        _drop_other_versions(client, root, keep)
    finally:
        client.close()
    log.info("version %s of %s mirrored to Milvus at %s", pointer.version, root, uri)
    return pointer.version


def _create_collection(client: Any, name: str, index: VectorIndex) -> None:
    from pymilvus import DataType

    if client.has_collection(name):  # a crashed earlier mirror: start it again
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, description="crossmodal window vectors")
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=index.dim)
    index_params = client.prepare_index_params()
    if index.kind == "flat":
        index_params.add_index("vector", index_type="FLAT", metric_type="IP")
    else:
        p = index.params
        index_params.add_index(
            "vector",
            index_type="HNSW",
            metric_type="IP",
            params={"M": p.hnsw_m, "efConstruction": p.hnsw_ef_construction},
        )
    # milvus-lite lacks an RPC that pymilvus calls while creating the index; its in-process
    # grpc server logs that as an ERROR with a traceback although the index is built.
    grpc_log = logging.getLogger("grpc._server")
    level = grpc_log.level
    grpc_log.setLevel(logging.CRITICAL)
    try:
        client.create_collection(name, schema=schema, index_params=index_params)
    finally:
        grpc_log.setLevel(level)
    ids, rows = index.vectors()
    for lo in range(0, len(ids), _INSERT_BATCH):
        batch = [
            {"id": int(i), "vector": row}
            for i, row in zip(
                ids[lo : lo + _INSERT_BATCH], rows[lo : lo + _INSERT_BATCH], strict=True
            )
        ]
        client.insert(name, batch)
    client.flush(name)
    client.load_collection(name)


def _drop_other_versions(client: Any, root: Path, keep: set[str | None]) -> None:
    prefix = collection_name(root, "", "").rsplit("_v", 1)[0] + "_v"
    for name in client.list_collections():
        if not name.startswith(prefix):
            continue
        version = name[len(prefix) :].rsplit("_", 1)[0]
        if version not in keep:
            client.drop_collection(name)


def _read_milvus_pointer(root: Path) -> dict[str, Any] | None:
    path = root / MILVUS_POINTER
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise StoreError(
            f"{path} is damaged ({err}); run `crossmodal index --store milvus:URI` again"
        ) from err


def uses_milvus(root: str | os.PathLike[str]) -> bool:
    """True when ``root`` has been mirrored to Milvus (readers then search there)."""
    return (Path(root) / MILVUS_POINTER).is_file()


class MilvusIndex:
    """A Milvus collection with the search surface of :class:`VectorIndex` that
    :class:`StoreSnapshot` uses (``kind``, ``params``, ``len``, ``ids``, ``_search_rows``)."""

    def __init__(
        self, client: Any, name: str, ids: np.ndarray, kind: str, params: IndexParams
    ) -> None:
        self._client = client
        self.name = name
        self._ids = ids
        self.kind = kind
        self.params = params

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def _search_rows(
        self, rows: np.ndarray, k: int, nprobe: int | None, ef_search: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        kk = min(k, len(self), _MAX_TOPK)
        scores = np.full((len(rows), kk), -np.inf, np.float32)
        ids = np.full((len(rows), kk), -1, np.int64)
        if kk == 0 or len(rows) == 0:
            return scores, ids
        search_params: dict[str, Any] = {"metric_type": "IP"}
        if self.kind != "flat":
            search_params["params"] = {"ef": max(int(ef_search or self.params.hnsw_ef_search), kk)}
        results = self._client.search(
            self.name,
            data=[row for row in rows],
            limit=kk,
            anns_field="vector",
            search_params=search_params,
            output_fields=["id"],  # [] would return every hit's vector
        )
        for q, hits in enumerate(results):
            n = len(hits)
            ids[q, :n] = [hit["id"] for hit in hits]
            scores[q, :n] = [hit["distance"] for hit in hits]
        return scores, ids


class MilvusStore(IndexStore):
    """An :class:`IndexStore` whose searches go to the Milvus collections named in
    ``INDEX_DIR/MILVUS`` (item metadata from that version's local catalog). Read-only:
    updates go through :meth:`IndexStore.begin_update` and :func:`publish_to_milvus`."""

    def refresh(self) -> bool:
        pointer = _read_milvus_pointer(self.root)
        if pointer is None:
            raise StoreNotFoundError(
                f"{self.root} was never sent to Milvus: run `crossmodal index --store milvus:URI`"
            )
        version = str(pointer["version"])
        if self._snapshot is not None and self._snapshot.version == version:
            return False
        version_dir = self.root / VERSIONS / version
        if not version_dir.is_dir():
            raise StoreNotFoundError(
                f"{self.root}: version {version} named by {MILVUS_POINTER} is gone; "
                "run `crossmodal index --store milvus:URI` again"
            )
        client = _client(str(pointer["uri"]))
        catalog = Catalog.open(version_dir / CATALOG, readonly=True)
        try:
            indexes, tables = {}, {}
            for modality in self.modalities:
                table = catalog.window_table(modality)
                # A collection is released when its server (or milvus-lite file) restarts.
                client.load_collection(pointer["collections"][modality])
                header = VectorIndex.load_header(version_dir / modality)
                params = IndexParams.from_dict(header["params"])
                indexes[modality] = MilvusIndex(
                    client,
                    pointer["collections"][modality],
                    table.vector_ids,
                    header["kind"],
                    params,
                )
                tables[modality] = table
            snapshot = StoreSnapshot(
                self.root,
                Pointer(1, version, None, ""),
                catalog,
                indexes,
                tables,  # type: ignore[arg-type]
            )
        except BaseException:
            catalog.close()
            raise
        self._check_fingerprint(snapshot)
        self._snapshot = snapshot
        return True


def open_store(root: str | os.PathLike[str], *, fingerprint: str | None = None) -> IndexStore:
    """Open ``root`` for searching with the backend it was published to (Milvus or faiss)."""
    cls = MilvusStore if uses_milvus(root) else IndexStore
    return cls.open(root, fingerprint=fingerprint)
