"""A table's first commit on an object store, made exactly once however many writers race.

delta-rs creates a table by writing version 0 without a put-if-absent on every store, so two
writers creating the same table at once can both "succeed", the second overwriting the first's
commit (its rows silently lost). Here the first commit is made in a scratch table beside the
real one and published with one put-if-absent of `_delta_log/00000000000000000000.json`: only
one writer wins; the others learn they lost and go on as a commit race's loser does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from spark_flow import storage

log = logging.getLogger(__name__)

FIRST_COMMIT = f"_delta_log/{0:020d}.json"
_SCRATCH = f"{storage.STAGING_DIR}/create"


def create_on_store(root: str, create: Callable[[str], object]) -> bool:
    """Create the table at `root` with `create(scratch_uri)`, published by put-if-absent.

    `create` makes the first commit of a table at the URI it is given; file paths in that
    commit must be relative to the table (they then name the same files at `root`).

    Returns:
        True if this call created the table, False if another writer had or has.
    """
    import obstore

    store = storage.object_store(root)
    scratch = f"{_SCRATCH}/{uuid.uuid4().hex}"
    try:
        create(storage.join(root, scratch))
        commit = bytes(obstore.get(store, f"{scratch}/{FIRST_COMMIT}").bytes())
        if not storage.create_if_absent(root, FIRST_COMMIT, commit.decode()):
            log.info("another writer created %s first", root)
            return False
        return True
    finally:
        leftovers = [meta["path"] for meta in obstore.list(store, scratch).collect()]
        if leftovers:
            obstore.delete(store, leftovers)
