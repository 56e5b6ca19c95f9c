"""How long work in the physics library reports progress and stops.

Every long loop (HMC and cluster chains, Langevin thermalisation, training, the flow's
push) takes two optional callables: a :data:`ProgressHook` called as
``hook(done, total, info)`` with figures such as ``acceptance`` or ``ess`` in ``info``, and
a :data:`StopHook` asked between steps. When the stop hook answers True the loop raises
:class:`SamplingCancelled` (training instead returns with ``stopped="cancelled"`` after
writing its checkpoint). Job orchestration (core.jobs) turns both into its own
progress reports and cancellation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ProgressHook = Callable[[int, int, dict[str, Any]], None]
StopHook = Callable[[], bool]


class SamplingCancelled(RuntimeError):
    """Raised between steps of a sampler (or the final evaluation) when the stop hook
    returned True."""
