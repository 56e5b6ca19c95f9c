"""Progress bars on stderr for long CLI work (stdout stays clean for ``--json``)."""

from __future__ import annotations

import sys

from tqdm import tqdm

from core.jobs.protocol import ProgressReport


class ProgressBar:
    """Callable adapter: ``ProgressReport`` values → one tqdm bar per stage, on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr is not None
        self._bar: tqdm | None = None
        self._stage: str | None = None

    def __call__(self, report: ProgressReport) -> None:
        if not self.enabled:
            return
        if self._bar is None or report.stage != self._stage:
            self.close()
            self._stage = report.stage
            self._bar = tqdm(total=report.total, desc=report.stage, file=sys.stderr,
                             leave=False, dynamic_ncols=True, mininterval=0.5)
        bar = self._bar
        shown = {k: v for k, v in report.metrics.items() if k in ("acceptance", "ess", "loss")}
        if shown:
            bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
        bar.update(max(report.step - bar.n, 0))  # tqdm throttles redraws to mininterval

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
