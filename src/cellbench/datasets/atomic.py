"""Atomic outputs: every file or folder a dataset writes appears whole or not at all.

A save writes to a temporary sibling (``.<name>.tmp-<id>``) and renames it into place; a folder
that already exists is first renamed to ``.<name>.old-<id>`` and removed once the new one is in
place. A process killed at any point leaves either the previous output or the new one, plus
temporaries that :func:`clean_temporaries` (called when the next run starts) removes; if it was
killed between the two renames of a folder, the previous output is renamed back.

File datasets of kedro-datasets with the same behaviour (``cellbench.datasets.ParquetDataset``,
``CSVDataset``, ``MatplotlibDataset``, ``TextDataset``) are the kedro-datasets classes with
:class:`AtomicSave` in front: the catalog names them instead of the plain ones.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import uuid
from pathlib import Path, PurePosixPath

from kedro_datasets.matplotlib import MatplotlibDataset as _MatplotlibDataset
from kedro_datasets.pandas import CSVDataset as _CSVDataset
from kedro_datasets.pandas import ParquetDataset as _ParquetDataset
from kedro_datasets.text import TextDataset as _TextDataset

log = logging.getLogger(__name__)
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-[0-9a-f]{8}$")
KILL_DURING_SAVE = "CELLBENCH_KILL_DURING_SAVE"  # fault injection for the kill / resume tests


def temporary(path: Path, kind: str = "tmp") -> Path:
    """A fresh sibling ``.<name>.<kind>-<8 hex>`` of ``path``."""
    return path.parent / f".{path.name}.{kind}-{uuid.uuid4().hex[:8]}"


def fault_point(path: Path, stage: str = "written") -> None:
    """Kill this process (SIGKILL, no clean-up) when the environment variable
    ``CELLBENCH_KILL_DURING_SAVE`` is ``<name>`` (stage ``written``: the new output is complete in
    its temporary, nothing moved yet) or ``<name>:swap`` (stage ``swap``: the old folder is moved
    aside, the new one not yet in place), ``<name>`` being the output's file or folder name. The
    kill / resume tests use it; it does nothing otherwise."""
    target = os.environ.get(KILL_DURING_SAVE)
    if not target:
        return
    name, _, when = target.partition(":")
    if Path(path).name.startswith(f".{name}.tmp-") and (when or "written") == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def _remove(path: Path) -> None:
    """Delete a file or a folder (nothing if it is not there)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def swap_into_place(tmp: Path, final: Path) -> None:
    """Move the finished ``tmp`` (file or folder) to ``final``, replacing what was there."""
    fault_point(tmp)
    if tmp.is_dir() and final.exists():
        backup = temporary(final, "old")
        final.rename(backup)
        fault_point(tmp, "swap")
        tmp.rename(final)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(tmp, final)


def clean_temporaries(root: Path) -> list[Path]:
    """Remove the temporaries that killed saves left under ``root``; restore a folder whose save
    was killed between its two renames. Returns what was removed or restored."""
    touched = []
    if not Path(root).is_dir():
        return touched
    for dirpath, dirnames, filenames in os.walk(root):
        for name in list(dirnames) + filenames:
            m = _TEMPORARY.match(name)
            if not m:
                continue
            path = Path(dirpath) / name
            final = path.parent / m["name"]
            if m["kind"] == "old" and not final.exists():
                path.rename(final)
                log.warning("restored %s from %s (a save was killed while replacing it)", final, path.name)
            else:
                _remove(path)
            touched.append(path)
            if name in dirnames:
                dirnames.remove(name)
    if touched:
        log.info("removed or restored %d temporaries left by an interrupted run under %s", len(touched), root)
    return touched


class AtomicSave:
    """Mixin for a kedro-datasets file dataset (``self._filepath``, not versioned, local): the
    save goes to a temporary sibling, which then replaces the file."""

    def save(self, data) -> None:
        final = self._filepath
        local = Path(str(final))
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary(local)
        self._filepath = PurePosixPath(tmp.as_posix()) if isinstance(final, PurePosixPath) else tmp
        try:
            super().save(data)
            swap_into_place(tmp, local)
        finally:
            self._filepath = final
            _remove(tmp)


class ParquetDataset(AtomicSave, _ParquetDataset):
    """``pandas.ParquetDataset``, saved atomically."""


class CSVDataset(AtomicSave, _CSVDataset):
    """``pandas.CSVDataset``, saved atomically."""


class MatplotlibDataset(AtomicSave, _MatplotlibDataset):
    """``matplotlib.MatplotlibDataset``, saved atomically."""


class TextDataset(AtomicSave, _TextDataset):
    """``text.TextDataset``, saved atomically."""
