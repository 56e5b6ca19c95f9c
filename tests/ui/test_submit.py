"""Submit forms: the API's errors next to the field, one job per form however often it is
posted, and exactly the API's visibility rules on every page."""

from __future__ import annotations

import re
import threading
from html.parser import HTMLParser

from tests.ui.lab import Lab, csrf_of, idem_of, sign_in

HMC = {"spec.dim": "2", "spec.L": "8", "spec.kappa": "0.2", "spec.lam": "0.01",
       "spec.n_samples": "16", "spec.chains": "2", "spec.seed": "1", "visibility": "group"}


def _jobs(lab: Lab, user: str) -> list[dict]:
    return lab.api(user, "GET", "/v1/jobs").json()["operations"]  # type: ignore[attr-defined,no-any-return]


def _form(c, kind: str = "hmc") -> tuple[str, str]:  # type: ignore[no-untyped-def]
    page = c.get(f"/ui/submit/{kind}").text
    return csrf_of(page), idem_of(page)


def test_bad_input_is_shown_next_to_its_field(lab: Lab) -> None:
    c = lab.user("alice")
    sign_in(c, lab.keys["alice"])
    token, key = _form(c)
    before = len(_jobs(lab, "alice"))
    r = c.post("/ui/submit/hmc", data={**HMC, "spec.L": "abc", "spec.lam": "-1",
                                       "csrf_token": token, "idempotency_key": key})
    assert r.status_code == 422
    for field, id_, text in (("spec.L", "f-spec-L", "valid integer"),
                             ("spec.lam", "f-spec-lam", "greater than or equal to 0")):
        m = re.search(rf'<p class="error" id="e-{id_}" data-error-for="{re.escape(field)}">'
                      r"([^<]+)</p>", r.text)
        assert m and text in m.group(1), (field, r.text[-3000:])
        inp = re.search(rf'<input id="{id_}"[^>]*>', r.text, re.S)
        assert inp and 'aria-invalid="true"' in inp.group(0)
        assert f"e-{id_}" in inp.group(0)  # aria-describedby names the message
    assert 'value="abc"' in r.text  # what was typed is kept
    assert 'id="e-f-spec-kappa"' not in r.text  # good fields carry no message
    assert len(_jobs(lab, "alice")) == before
    # a sample job naming no model the user can see: the message sits at spec.model
    token, key = _form(c, "sample")
    r = c.post("/ui/submit/sample", data={"spec.model": "nope/1", "spec.n_samples": "10",
                                          "csrf_token": token, "idempotency_key": key})
    assert r.status_code == 422 and 'data-error-for="spec.model"' in r.text


def test_a_form_posted_twice_makes_one_job(lab: Lab) -> None:
    c = lab.user("alice")
    sign_in(c, lab.keys["alice"])
    token, key = _form(c)
    data = {**HMC, "spec.seed": "7", "csrf_token": token, "idempotency_key": key}
    before = len(_jobs(lab, "alice"))
    first = c.post("/ui/submit/hmc", data=data)
    second = c.post("/ui/submit/hmc", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert re.fullmatch(r"/ui/jobs/[0-9a-f-]{36}", first.headers["location"])
    assert len(_jobs(lab, "alice")) == before + 1
    # a double click: both posts in flight at once
    token, key = _form(c)
    data = {**HMC, "spec.seed": "8", "csrf_token": token, "idempotency_key": key}
    answers: list[tuple[int, str]] = []

    def post() -> None:
        r = c.post("/ui/submit/hmc", data=data)
        answers.append((r.status_code, r.headers.get("location", "")))

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 3 and {a[0] for a in answers} == {303}
    assert len({a[1] for a in answers}) == 1
    assert len(_jobs(lab, "alice")) == before + 2
    # the same key with other values is not silently the old job
    r = c.post("/ui/submit/hmc", data={**data, "spec.seed": "9"})
    assert r.status_code == 422 and "already used for another job" in r.text
    assert idem_of(r.text) != key
    assert len(_jobs(lab, "alice")) == before + 2


def test_other_groups_see_nothing_and_members_cannot_cancel_others_jobs(lab: Lab) -> None:
    alice, bob, carol = lab.user("alice"), lab.user("bob"), lab.user("carol")
    sign_in(alice, lab.keys["alice"])
    token, key = _form(alice)
    r = alice.post("/ui/submit/hmc", data={**HMC, "spec.seed": "11", "csrf_token": token,
                                           "idempotency_key": key})
    job_url = r.headers["location"]
    job_id = job_url.rsplit("/", 1)[1]
    assert job_id in alice.get("/ui/jobs").text
    assert job_id in alice.get("/ui/jobs?kind=hmc&state=queued").text  # the filters
    assert job_id not in alice.get("/ui/jobs?kind=train").text
    assert job_id not in alice.get("/ui/jobs?state=running").text

    bob_token = sign_in(bob, lab.keys["bob"])
    assert job_id not in bob.get("/ui/jobs").text
    for path in (job_url, f"{job_url}/events", f"/ui/ensembles/{job_id}",
                 f"/ui/ensembles/{job_id}/download", f"/ui/ensembles/{job_id}/magnetisation.svg"):
        r = bob.get(path)
        assert r.status_code == 404, path
        assert "alice" not in r.text and "lab-a" not in r.text
    r = bob.post(f"{job_url}/cancel", data={"csrf_token": bob_token})
    assert r.status_code == 404

    carol_token = sign_in(carol, lab.keys["carol"])
    assert carol.get(job_url).status_code == 200  # same group: visible
    r = carol.post(f"{job_url}/cancel", data={"csrf_token": carol_token})
    assert r.status_code == 403 and "only the job&#39;s owner or an admin" in r.text
    assert lab.api("alice", "GET", f"/v1/jobs/{job_id}").json()[  # type: ignore[attr-defined]
        "metadata"]["cancel_requested"] is False

    alice_token = csrf_of(alice.get(job_url).text)
    r = alice.post(f"{job_url}/cancel", data={"csrf_token": alice_token})
    assert r.status_code == 303
    op = lab.api("alice", "GET", f"/v1/jobs/{job_id}").json()  # type: ignore[attr-defined]
    assert op["metadata"]["state"] == "cancelled"
    assert "cancelled" in alice.get("/ui/jobs?state=cancelled").text


class _Labels(HTMLParser):
    """Inputs and selects, the ``for`` of every label, images and their alt text."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a)
        elif tag == "label" and a.get("for"):
            self.label_for.add(str(a["for"]))
        elif tag == "img":
            self.images.append(a)


def test_every_control_has_a_label_and_every_image_alt_text(lab: Lab) -> None:
    c = lab.user("alice")
    pages = ["/ui/signin"]
    sign_in(c, lab.keys["alice"])
    pages += ["/ui/jobs", "/ui/submit/hmc", "/ui/submit/train", "/ui/submit/sample",
              "/ui/models"]
    for path in pages:
        p = _Labels()
        p.feed(c.get(path).text)
        assert p.controls, path
        for ctl in p.controls:
            assert ctl.get("id") in p.label_for or ctl.get("aria-label"), (path, ctl)
        for img in p.images:
            assert img.get("alt"), (path, img)


def test_a_bad_model_search_is_shown_next_to_its_field(lab: Lab) -> None:
    c = lab.user("alice")
    sign_in(c, lab.keys["alice"])
    r = c.get("/ui/models", params={"dim": "7", "min_ess": "0.2"})
    assert r.status_code == 422
    m = re.search(r'<p class="error" id="e-q-dim">([^<]+)</p>', r.text)
    assert m and "dim=" in m.group(1) and "3" in m.group(1), r.text[-2000:]
    assert 'id="e-q-min_ess"' not in r.text and 'value="0.2"' in r.text
    ok = c.get("/ui/models", params={"dim": "2", "kappa_min": "0.1", "method": "ir"})
    assert ok.status_code == 200 and "No model versions you can see match" in ok.text
