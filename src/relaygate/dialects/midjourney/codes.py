"""Result codes and task statuses of the midjourney-proxy protocol (spec/midjourney.md §2, §6.1, §7).

The codes are the proxies' ``ReturnCode`` (identical in MJP-OSS and MJP-NET); the statuses are the strings
of the task object. ``status_rank`` orders two sightings of one task so an update older than the one
already kept (a late poll answer, a callback overtaken by a poll) can be dropped.
"""

from __future__ import annotations

import math
from enum import StrEnum

SUCCESS = 1  # submitted; ``result`` is the task id
NOT_FOUND = 3  # related task unknown, or "no account instance available"
VALIDATION_ERROR = 4  # bad parameters (also new-api's own relay errors)
FAILURE = 9  # system error
EXISTED = 21  # task exists already, or "Waiting for window confirm" (the task waits in MODAL)
IN_QUEUE = 22  # accepted, queued
QUEUE_REJECTED = 23  # queue full
BANNED_PROMPT = 24  # banned word in the prompt


class TaskStatus(StrEnum):
    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    MODAL = "MODAL"
    IN_PROGRESS = "IN_PROGRESS"
    FAILURE = "FAILURE"
    SUCCESS = "SUCCESS"
    CANCEL = "CANCEL"


FINAL_STATUSES = ("SUCCESS", "FAILURE", "CANCEL")

# §7's order (MJP-OSS ``TaskStatus.order``), with MODAL (plus/MJP-NET) between SUBMITTED and IN_PROGRESS:
# a task confirmed through /mj/submit/modal goes on from MODAL to IN_PROGRESS.
_RANKS = {"NOT_START": 0.0, "SUBMITTED": 1.0, "MODAL": 2.0, "IN_PROGRESS": 3.0,
          "FAILURE": 4.0, "SUCCESS": 4.0, "CANCEL": 4.0}
_MAX_RUNNING_PERCENT = 99  # IN_PROGRESS "100%" stays below the final statuses (§7: 3 + p/100 < 4)


def status_rank(status: str, progress: str | None) -> float:
    """Where a status/progress pair stands in a task's life; a sighting ranking below the one kept is stale.

    IN_PROGRESS counts its progress (3.00 … 3.99); an unknown status ranks with NOT_START, so it never
    displaces anything the task has been seen doing. The final statuses tie at 4: which of them wins is the
    caller's rule (a final status is never replaced).
    """
    rank = _RANKS.get(status, 0.0)
    if status != TaskStatus.IN_PROGRESS:
        return rank
    percent = progress_percent(progress) or 0
    return rank + min(percent, _MAX_RUNNING_PERCENT) / 100


def progress_percent(progress: object) -> int | None:
    """The whole percentage in a progress such as ``"45%"`` (``"12.5%"`` → 12; numbers too), clamped to
    0..100; None when there is none (MJP-OSS leaves ``""`` after a failure) or it is not a number."""
    if isinstance(progress, bool):
        return None
    if isinstance(progress, int | float):
        value = float(progress)
    elif isinstance(progress, str):
        text = progress.strip().removesuffix("%").strip()
        try:
            value = float(text)
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(value):
        return None
    return max(0, min(100, int(value)))
