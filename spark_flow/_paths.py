"""Folders that ship both in a checkout (next to the package) and inside the wheel."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dirs(env_var: str, in_wheel: str, in_checkout: str) -> list[Path]:
    """Existing folders, first match first: `$env_var`, the wheel's copy, the checkout's."""
    dirs = [_PACKAGE / in_wheel, _PACKAGE.parent / in_checkout]
    if os.environ.get(env_var):
        dirs.insert(0, Path(os.environ[env_var]))
    return [d for d in dirs if d.is_dir()]
