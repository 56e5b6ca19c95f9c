"""The dashboard in real Chromium against the embedded service (``srflow serve``: API +
worker): sign in, submit a small HMC job, watch it finish live, open its ensemble,
download it and check the sha256; a training's curve renders; another group's user sees
none of it; the pages work from the keyboard; no console errors. Screenshots of each page
at 1280 and 390 px go to $SRFLOW_UI_SHOTS (the README's: ``SRFLOW_UI_SHOTS=docs/img``;
default a scratch folder, so a test run leaves the tracked PNGs alone)."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.service.processes import (
    ADMIN_KEY,
    PY,
    free_port,
    healthy,
    service_env,
    spawn,
    stop,
    wait_until,
)
from tests.ui.browser import Browser, start_chromium

pytestmark = [pytest.mark.service, pytest.mark.slow]


@dataclass
class Site:
    url: str
    keys: dict[str, str]
    log: Path
    made: dict[str, str] = field(default_factory=dict)  # what alice created, for bob

    def api(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.keys[user]}"})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    d = tmp_path_factory.mktemp("ui-embedded")
    env = service_env(d / "data", None)
    port = free_port()
    log = d / "serve.log"
    serve = spawn([PY, "-m", "cli.service", "serve", "--port", str(port),
                   "--data-dir", str(d / "data")], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(url, True), 90, "embedded service", [serve])
        keys = {"admin": ADMIN_KEY}
        with httpx.Client(base_url=url, timeout=30,
                          headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
            for group in ("lab-a", "lab-b"):
                assert c.post("/v1/groups", json={"name": group}).status_code == 201
            for user, group in (("alice", "lab-a"), ("bob", "lab-b")):
                assert c.post("/v1/users", json={"name": user, "groups": [group]}
                              ).status_code == 201
                keys[user] = c.post(f"/v1/users/{user}/keys", json={}).json()["key"]
        yield Site(url, keys, log)
    finally:
        stop(serve, timeout=30)


@pytest.fixture(scope="module")
def browser(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    downloads = tmp_path_factory.mktemp("downloads")
    d = start_chromium(downloads)
    try:
        yield Browser(d, site.url, downloads)
    finally:
        d.quit()


def _fill(b: Browser, values: dict[str, str]) -> None:
    for id_, value in values.items():
        el = b.css(f"#{id_}")
        el.clear()
        el.send_keys(value)


def _wait_done(b: Browser, site: Site, timeout: float) -> str:
    try:
        b.wait(lambda: b.css('[data-job] [data-field="state"]').text in
               ("succeeded", "failed", "cancelled"), timeout, "job finished on the page")
    except Exception as exc:
        raise AssertionError(site.log.read_text(errors="replace")[-4000:]) from exc
    return str(b.css('[data-job] [data-field="state"]').text)


def _no_console_errors(b: Browser) -> None:
    bad = [e for e in b.drain_console() if e["level"] == "SEVERE"]
    assert not bad, bad


def test_keyboard_only_sign_in_and_form(browser: Browser, site: Site) -> None:
    b = browser
    b.sign_in(site.keys["alice"])  # typed into the autofocused field, Enter submits
    b.get("/ui/submit/hmc")  # focus starts on the document
    assert b.js("return document.activeElement === document.body")
    order: list[str] = []
    for _ in range(40):  # Tab through the page: every control is reachable, in order
        ActionChains(b.d).send_keys(Keys.TAB).perform()
        el = b.js("const e = document.activeElement; return [e.id || e.textContent.trim(), "
                  "getComputedStyle(e).outlineStyle]")
        assert el[1] != "none", f"no visible focus on {el[0]}"
        order.append(el[0])
        if el[0].startswith("Submit hmc"):
            break
    assert order[0] == "Skip to content"
    controls = b.js("return Array.from(document.querySelectorAll("
                    "'form.submit input:not([type=hidden]), form.submit select')).map(e => e.id)")
    assert [x for x in order if x in controls] == controls
    assert order[-1] == "Submit hmc job"
    # bad input, typed and submitted with Enter: the message sits next to the field
    _fill(b, {"f-spec-L": "abc", "f-spec-lam": "-1"})
    b.css("#f-spec-lam").send_keys(Keys.ENTER)
    b.wait(lambda: b.all('[data-error-for="spec.L"]'), 20, "field error shown")
    assert "valid integer" in b.css('[data-error-for="spec.L"]').text
    assert "greater than or equal to 0" in b.css('[data-error-for="spec.lam"]').text
    assert b.css("#f-spec-L").get_attribute("aria-invalid") == "true"
    b.screenshot("submit-errors")
    warnings = b.drain_console()  # the 422 page load is the only entry allowed
    assert all("422" in e["message"] for e in warnings if e["level"] == "SEVERE"), warnings


def test_hmc_job_live_then_ensemble_download(browser: Browser, site: Site) -> None:
    b = browser
    b.sign_in(site.keys["alice"])
    with site.api("alice") as c:
        before = len(c.get("/v1/jobs").json()["operations"])
    b.get("/ui/submit/hmc")
    _fill(b, {"f-spec-L": "4", "f-spec-n_samples": "32", "f-spec-chains": "2",
              "f-spec-n_therm": "10", "f-spec-seed": "5"})
    ActionChains(b.d).double_click(b.css("form.submit button[type=submit]")).perform()
    b.wait(lambda: "/ui/jobs/" in b.d.current_url, 30, "job page")
    job_id = b.d.current_url.rsplit("/", 1)[1]
    b.js("window.__sameDocument = true;"
         "window.__states = [];"
         "new MutationObserver(() => window.__states.push("
         "document.querySelector('[data-job] [data-field=state]').textContent))"
         ".observe(document.querySelector('[data-job]'), "
         "{subtree: true, childList: true, characterData: true});")
    assert _wait_done(b, site, 120) == "succeeded"
    assert b.js("return window.__sameDocument") is True  # no reload happened
    assert "succeeded" in b.js("return window.__states")  # the stream changed the page
    assert b.css('[data-job] [data-field="progress"]').get_attribute("value") == "1"
    with site.api("alice") as c:
        ops = c.get("/v1/jobs").json()["operations"]
    assert len(ops) == before + 1  # the double click made one job
    b.d.refresh()  # now server-rendered: the results with errors and τ_int
    assert "abs_magnetization" in b.css("main").text and "τ_int" in b.css("main").text
    b.screenshot("job-hmc")
    b.css('[data-link="ensemble"]').click()  # a link the stream added
    b.wait(lambda: f"/ui/ensembles/{job_id}" in b.d.current_url, 20, "ensemble page")
    sha = b.css('[data-field="sha256"]').text.strip()
    b.wait(lambda: all(w > 0 for _, w in b.images_loaded()), 30, "histogram drawn")
    assert any("magnetisation.svg" in s for s, _ in b.images_loaded())
    assert "abs_magnetization" in b.css("table").text and "τ_int" in b.css("table").text
    b.css('[data-link="download"]').click()
    target = b.downloads / f"ensemble-{job_id}.h5"
    b.wait(lambda: target.is_file() and not list(b.downloads.glob("*.crdownload")), 30,
           "download finished")
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha
    b.screenshot("ensemble")
    b.get("/ui/jobs?kind=train")  # the kind filter
    assert job_id[:8] not in b.css("main").text
    b.get("/ui/jobs?kind=hmc&state=succeeded")
    assert job_id[:8] in b.css("table.jobs").text
    site.made.update(job=job_id, ensemble=job_id)
    _no_console_errors(b)


def test_training_live_in_the_list_then_curve_model_alias_sample(browser: Browser,
                                                                  site: Site) -> None:
    b = browser
    b.sign_in(site.keys["alice"])
    b.get("/ui/submit/train")
    _fill(b, {"f-spec-L": "8", "f-spec-steps": "10", "f-spec-batch": "16",
              "f-model_name": "lab-a.ui-test"})
    b.css("form.submit button[type=submit]").click()
    b.wait(lambda: "/ui/jobs/" in b.d.current_url, 30, "job page")
    job_id = b.d.current_url.rsplit("/", 1)[1]
    b.get("/ui/jobs?kind=train")  # the list follows it live
    row = f'tr[data-job="{job_id}"]'
    assert b.css(row).get_attribute("data-events"), "not followed live: already finished?"
    b.js("window.__sameDocument = true; window.__seen = [];"
         "new MutationObserver(() => window.__seen.push(document.querySelector("
         "arguments[0] + ' [data-field=state]').textContent)).observe("
         "document.querySelector(arguments[0]), "
         "{subtree: true, childList: true, characterData: true});", row)
    try:
        b.wait(lambda: b.css(f'{row} [data-field="state"]').text == "succeeded", 150,
               "training finished in the list")
    except Exception as exc:
        raise AssertionError(site.log.read_text(errors="replace")[-4000:]) from exc
    assert b.js("return window.__sameDocument") is True and b.js("return window.__seen")
    ess = float(b.css(f'{row} [data-field="ess"]').text)
    kappa_l = float(b.css(f'{row} [data-field="kappa_L"]').text)
    assert 0.0 <= ess <= 1.0 and 0.1 < kappa_l < 0.4
    assert not b.all(f'{row} [data-field="cancel"]')  # no cancel for a finished job
    b.get("/ui/jobs")
    b.screenshot("jobs")
    b.css(f'{row} a[href="/ui/jobs/{job_id}"]').click()
    b.wait(lambda: b.all('img[data-chart="curve"]'), 20, "job page with its curve")
    b.wait(lambda: all(w > 0 for _, w in b.images_loaded()), 30, "curve drawn")
    assert any("/ui/models/lab-a.ui-test/versions/1/curve.svg" in s and w > 300
               for s, w in b.images_loaded()), b.images_loaded()
    b.screenshot("job-train")
    b.get("/ui/models")
    _fill(b, {"q-dim": "2", "q-L": "8", "q-method": "ir"})
    b.css("#q-method").send_keys(Keys.ENTER)
    b.wait(lambda: "method=ir" in b.d.current_url, 20, "search")
    b.wait(lambda: all(w > 0 for _, w in b.images_loaded()), 30, "coupling map drawn")
    assert "lab-a.ui-test/1" in b.css("table").text
    b.screenshot("models")
    b.d.find_element("link text", "lab-a.ui-test/1").click()
    b.wait(lambda: "/ui/models/lab-a.ui-test" in b.d.current_url, 20, "model page")
    weights = b.css("#v1 code.digest").text.strip()
    b.css('#v1 a[href$="/versions/1/download"]').click()
    target = b.downloads / "lab-a.ui-test-v1.zip"
    b.wait(lambda: target.is_file() and not list(b.downloads.glob("*.crdownload")), 30,
           "model download finished")
    with zipfile.ZipFile(target) as z:
        assert hashlib.sha256(z.read("model.safetensors")).hexdigest() == weights
    _fill(b, {"f-alias": "best"})
    b.css("#f-alias").send_keys(Keys.ENTER)
    b.wait(lambda: "lab-a.ui-test@best" in b.css("#aliases").text, 20, "alias set")
    assert "version 1" in b.css("#aliases").text
    b.screenshot("model")
    b.d.find_element("link text", "Sample from it").click()  # the form comes filled in
    b.wait(lambda: "/ui/submit/sample" in b.d.current_url, 20, "sample form")
    assert b.css("#f-spec-model").get_attribute("value") == "lab-a.ui-test/1"
    _fill(b, {"f-spec-n_samples": "64"})
    b.css("form.submit button[type=submit]").click()
    b.wait(lambda: "/ui/jobs/" in b.d.current_url, 30, "sample job page")
    assert _wait_done(b, site, 120) == "succeeded"
    b.d.refresh()
    assert float(b.css('[data-field="ode"]').text.split()[0]) < 0.5  # the monitor's bound
    assert "τ_int" in b.css("main").text
    assert b.css('[data-link="sampled-model"]').text == "Sampled from lab-a.ui-test/1"
    b.css('[data-link="ensemble"]').click()
    b.wait(lambda: "/ui/ensembles/" in b.d.current_url, 20, "ensemble page")
    assert "from lab-a.ui-test/1" in b.css("main").text
    site.made.update(model="lab-a.ui-test", train=job_id)
    _no_console_errors(b)


def test_another_groups_user_sees_none_of_it(browser: Browser, site: Site) -> None:
    if not {"job", "model"} <= site.made.keys():
        pytest.fail("runs after the tests that create alice's job and model")
    b = browser
    b.sign_in(site.keys["bob"])
    assert site.made["job"][:8] not in b.css("main").text
    b.get("/ui/models")
    assert "lab-a.ui-test" not in b.css("main").text
    for path in (f"/ui/jobs/{site.made['job']}", f"/ui/jobs/{site.made['train']}",
                 f"/ui/ensembles/{site.made['ensemble']}", f"/ui/models/{site.made['model']}"):
        b.get(path)
        assert b.css("h1").text == "404", path
        assert "alice" not in b.css("main").text
    allowed = [e for e in b.drain_console() if "404" not in e["message"]]
    assert not [e for e in allowed if e["level"] == "SEVERE"], allowed
    with site.api("bob") as c:  # the same answer as the API's
        assert c.get(f"/v1/jobs/{site.made['job']}").status_code == 404
