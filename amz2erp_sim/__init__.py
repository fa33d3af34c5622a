"""Local simulators of Amazon's SP-API and of ERPNext's REST API, for tests, benchmarks and `amz2erp demo`."""

from __future__ import annotations

import threading
from typing import Protocol


class _Stoppable(Protocol):
    def stop(self) -> None: ...


def serve_until_interrupted(sim: _Stoppable) -> int:
    """Keep a started simulator serving until Ctrl-C (the `python -m amz2erp_sim.*` entry points)."""
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0
