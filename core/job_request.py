"""The body of ``POST /jobs``: one of the four job kinds, told apart by ``kind``
(pydantic, no torch)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.scan_spec import ScanSpec
from core.specs import HmcSpec, SampleSpec, TrainSpec, _Spec


class HmcJob(_Spec):
    kind: Literal["hmc"]
    spec: HmcSpec


class TrainJob(_Spec):
    kind: Literal["train"]
    spec: TrainSpec


class SampleJob(_Spec):
    kind: Literal["sample"]
    spec: SampleSpec


class ScanJob(_Spec):
    kind: Literal["scan"]
    spec: ScanSpec


JobRequest = Annotated[HmcJob | TrainJob | SampleJob | ScanJob, Field(discriminator="kind")]
JobSpec = HmcSpec | TrainSpec | SampleSpec | ScanSpec
