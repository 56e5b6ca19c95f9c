"""The body of ``POST /jobs``: one of the four job kinds, told apart by ``kind``
(pydantic, no torch)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.jobs.scan_spec import ScanSpec
from core.jobs.specs import HmcSpec, SampleSpec, SpecModel, TrainSpec


class HmcJob(SpecModel):
    kind: Literal["hmc"]
    spec: HmcSpec


class TrainJob(SpecModel):
    kind: Literal["train"]
    spec: TrainSpec


class SampleJob(SpecModel):
    kind: Literal["sample"]
    spec: SampleSpec


class ScanJob(SpecModel):
    kind: Literal["scan"]
    spec: ScanSpec


JobRequest = Annotated[HmcJob | TrainJob | SampleJob | ScanJob, Field(discriminator="kind")]
JobSpec = HmcSpec | TrainSpec | SampleSpec | ScanSpec
