"""relaygate's request ids: unique, from the OS's random bytes, never repeated by a forked worker."""

from __future__ import annotations

import os
import re

from relaygate.surfaces.common import _random_hex


def test_ids_are_24_hex_digits_and_unique_across_pool_refills() -> None:
    ids = [_random_hex.take() for _ in range(5_000)]  # ~5 refills of the 1,024-id pool
    assert all(re.fullmatch(r"[0-9a-f]{24}", rid) for rid in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_hand_out_its_parents_next_ids() -> None:
    _random_hex.take()  # the pool is filled in the parent
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write_end, _random_hex.take().encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{24}", child_id)
    assert child_id != _random_hex.take()
