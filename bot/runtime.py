"""Process tuning for `lapor run` (and the benchmarks that stand in for it)."""

from __future__ import annotations

import gc
import sys


def tune_process() -> None:
    """Call once, after start-up built everything long-lived.

    - Worker threads hold the database briefly; let them get the GIL back sooner than the
      default 5 ms, so a transaction is not stretched by the event loop's turn (and the
      loop, which stamps each send against the rate window, is not held up by a thread).
    - Everything built at start-up (models, catalogs, city profile, schemas) lives as long as
      the process: move it out of the collector's reach so full collections stay cheap
      (measured: ~10 % less CPU per update in bench/inbound.py).
    """
    sys.setswitchinterval(0.0005)
    gc.collect()
    gc.freeze()


def retry_delay(failures: int) -> float:
    """Seconds to wait after `failures` failed attempts in a row at an outside dependency
    (database, Bot API, broker): 1, 2, 4 … up to 30."""
    return min(30.0, 0.5 * 2**failures)
