"""A job page never links a model version the API redacted for this caller (docs/sharing.md:
a sample's source model is named only to those who can see it)."""

from app.ui.jobs import job_view

HIDDEN = {"name": None, "version": None, "redacted": True}


def _op(model: object, spec_model: object) -> dict[str, object]:
    return {"name": "jobs/abc", "done": True,
            "metadata": {"kind": "sample", "state": "succeeded", "spec": {"model": spec_model}},
            "response": {"model": model, "ensemble": {"id": "abc"}}}


def test_redacted_model_is_not_linked() -> None:
    view = job_view(_op(HIDDEN, HIDDEN))
    assert view["model"] is None and view["model_ref"] is None
    assert view["model_redacted"] is True


def test_visible_model_is_linked() -> None:
    seen = {"name": "lab.ir-d2-L8", "version": 2, "ref": "lab.ir-d2-L8/2"}
    view = job_view(_op(seen, "lab.ir-d2-L8/2"))
    assert view["model"] == seen and view["model_redacted"] is False
    assert view["model_ref"] == {"ref": "lab.ir-d2-L8/2", "name": "lab.ir-d2-L8"}
