"""Submit forms: their fields (named by the API's own error paths, ``spec.L``), reading a
posted form, and turning it into the body of ``POST /v1/jobs``."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import Request

MAX_FORM_BYTES = 64 * 1024
KINDS = ("hmc", "train", "sample")
VISIBILITY = ("group", "private", "public")
_INT = re.compile(r"^[+-]?\d+$")
_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class FormTooLarge(Exception):
    """A form body over :data:`MAX_FORM_BYTES`."""


@dataclass(frozen=True)
class FormField:
    name: str  # the API's error path: "spec.L", "model_name", "visibility"
    label: str
    default: str = ""
    options: tuple[str, ...] = ()  # a select when given
    number: bool = True
    hint: str = ""

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-")


def _vis() -> FormField:
    return FormField("visibility", "Visibility", "group", VISIBILITY, number=False,
                     hint="who else may see the job and what it makes")


def _theory(kappa: str) -> list[FormField]:
    return [FormField("spec.dim", "Dimension d", "2", ("1", "2", "3")),
            FormField("spec.L", "Lattice size L", "8", hint="sites per direction"),
            FormField("spec.kappa", "Hopping κ", kappa),
            FormField("spec.lam", "Quartic λ", "0.01")]


FORMS: dict[str, list[FormField]] = {
    "hmc": [*_theory("0.2"),
            FormField("spec.n_samples", "Samples", "256"),
            FormField("spec.chains", "Chains", "4"),
            FormField("spec.n_therm", "Thermalisation trajectories", "",
                      hint="empty: the server's default"),
            FormField("spec.seed", "Seed", "0"), _vis()],
    "train": [FormField("spec.method", "Method", "ir", ("ir", "uv", "baseline"), number=False),
              *_theory("0.25"),
              FormField("spec.steps", "Training steps", "50"),
              FormField("spec.batch", "Batch", "", hint="empty: the server's default"),
              FormField("spec.max_minutes", "Time budget (minutes)", "",
                        hint="empty: until the steps are done"),
              FormField("spec.seed", "Seed", "0"),
              FormField("model_name", "Model name", "", number=False,
                        hint="empty: your group's default name"), _vis()],
    "sample": [FormField("spec.model", "Model", "", number=False,
                         hint="NAME/VERSION or NAME@ALIAS"),
               FormField("spec.n_samples", "Samples", "1000"),
               FormField("spec.seed", "Seed", "0"), _vis()],
}


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only kind these forms post)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge()
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def valid_idempotency_key(key: str | None) -> bool:
    return bool(key) and bool(_KEY.match(str(key)))


def _value(text: str, number: bool) -> object:
    if not number:
        return text
    if _INT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text  # the API names the field and says what it wanted


def job_body(kind: str, form: dict[str, str]) -> dict[str, object]:
    """``{"kind", "spec", "model_name"?, "visibility"?}``; empty fields are left out, so
    the API's defaults apply."""
    spec: dict[str, object] = {}
    body: dict[str, object] = {"kind": kind, "spec": spec}
    for f in FORMS[kind]:
        text = form.get(f.name, "").strip()
        if not text:
            continue
        if f.name.startswith("spec."):
            spec[f.name.removeprefix("spec.")] = _value(text, f.number)
        else:
            body[f.name] = _value(text, f.number)
    return body


def field_errors(kind: str, errors: list[dict[str, str]]) -> tuple[dict[str, str], list[str]]:
    """The API's ``errors`` split into those next to a field of this form and the rest."""
    names = {f.name for f in FORMS[kind]}
    by_field: dict[str, str] = {}
    other: list[str] = []
    for e in errors:
        field, msg = str(e.get("field", "")), str(e.get("message", ""))
        if field in names:
            by_field[field] = f"{by_field[field]}; {msg}" if field in by_field else msg
        else:
            other.append(f"{field}: {msg}" if field else msg)
    return by_field, other
