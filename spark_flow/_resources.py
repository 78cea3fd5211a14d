"""What ships with the package besides its code: the profiles (`conf`) and the bundled jobs.

Both are found through the package's own resources (`importlib.resources`), so an installed
wheel (`spark_flow/conf`, `spark_flow/_jobs`), a wheel or zip on `--py-files` (imported from the
archive: no folder on disk) and a checkout (`conf/`, `jobs/` beside the package) all work.
A folder inside an archive is extracted once per process into a temporary folder: a profile
names its own folder (`{conf_dir}`), `spark-submit` takes a script path, and a job imports its
siblings (`_schemas`, `_recipes`) from the folder it runs from.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.resources.abc from Python 3.11 only
    from importlib.abc import Traversable

log = logging.getLogger(__name__)

PACKAGE = "spark_flow"


def package_root() -> Traversable:
    """The package's folder: a `Path` when installed or checked out, else a place in an archive."""
    return files(PACKAGE)


def shipped_dirs(env_var: str, in_package: str, in_checkout: str) -> list[Path]:
    """Existing folders, first match first: `$env_var`, the package's copy, the checkout's."""
    root = package_root()
    candidates: list[Path] = []
    if os.environ.get(env_var):
        candidates.append(Path(os.environ[env_var]))
    inside = root / in_package
    if inside.is_dir():
        candidates.append(inside if isinstance(inside, Path) else _extracted(in_package))
    if isinstance(root, Path):  # only a folder on disk has a checkout around it
        candidates.append(root.parent / in_checkout)
    return [d for d in dict.fromkeys(candidates) if d.is_dir()]


def walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    """Every file under `folder` as (relative path, file), compiled bytecode left out."""
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            if entry.name != "__pycache__":
                yield from walk(entry, f"{relative}/")
        elif not entry.name.endswith((".pyc", ".pyo")):
            yield relative, entry


@functools.cache
def _extracted(in_package: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix=f"spark-flow-{in_package.strip('_')}-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    for relative, entry in walk(package_root() / in_package):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(entry.read_bytes())
    log.info("extracted the package's %s from its archive into %s", in_package, target)
    return target
