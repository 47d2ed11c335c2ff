"""Choosing the records of a manifest split, and checking their media exist."""

from __future__ import annotations

from pathlib import Path

from crossmodal.errors import CrossmodalError


def check_media_exist(records: list) -> None:
    """One error listing every clip whose video or music file is missing (the first 50,
    then a count)."""
    missing = []
    for record in records:
        for path in dict.fromkeys((record.video, record.music)):
            if path is not None and not Path(path).is_file():  # music-only rows: no video
                missing.append(f"  {record.id}: {path}")
    if missing:
        shown = "\n".join(missing[:50])
        more = f"\n  … and {len(missing) - 50} more" if len(missing) > 50 else ""
        raise CrossmodalError(
            f"{len(missing)} media file(s) of the manifest are missing:\n{shown}{more}"
        )


def split_records(records: list, split: str, manifest: str) -> list:
    """The records of ``split`` (every record for ``"all"``), or an error naming the
    splits present."""
    if split == "all":
        return list(records)
    chosen = [r for r in records if r.split == split]
    if not chosen:
        present = sorted({r.split for r in records if r.split})
        hint = (
            f"splits present: {', '.join(present)}"
            if present
            else "its clips have no split; use --split all"
        )
        raise CrossmodalError(f"split {split!r} of {manifest} has no clips ({hint})")
    return chosen
