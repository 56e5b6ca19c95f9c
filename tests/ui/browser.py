"""Real Chromium for the dashboard tests: Debian's ``chromium`` driven by ``chromedriver``
through selenium, headless, with downloads into a folder and the console log readable."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
# the README's screenshots: refresh them with SRFLOW_UI_SHOTS=docs/img; by default a run
# (CI's included) writes to a scratch folder and leaves the tracked PNGs alone
SHOTS = Path(os.environ.get("SRFLOW_UI_SHOTS") or Path(tempfile.gettempdir()) / "srflow-ui")
if not SHOTS.is_absolute():
    SHOTS = ROOT / SHOTS
WIDTHS = (1280, 390)


def start_chromium(downloads: Path) -> WebDriver:
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail("chromium / chromedriver are not installed: run scripts/test "
                    "(it installs Debian's chromium and chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--disable-extensions", "--no-first-run",
                "--password-store=basic"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=ChromeService(driver), options=opts)
    d.execute_cdp_cmd("Page.setDownloadBehavior",
                      {"behavior": "allow", "downloadPath": str(downloads)})
    d.set_page_load_timeout(60)
    return d


@dataclass
class Browser:
    d: WebDriver
    url: str
    downloads: Path
    console: list[dict[str, Any]] = field(default_factory=list)

    def get(self, path: str) -> None:
        self.d.get(self.url + path)

    def css(self, selector: str) -> Any:
        return self.d.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        return list(self.d.find_elements(By.CSS_SELECTOR, selector))

    def js(self, script: str, *args: Any) -> Any:
        return self.d.execute_script(script, *args)

    def wait(self, check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
        return WebDriverWait(self.d, timeout, poll_frequency=0.2).until(
            lambda _: check(), message=what)

    def drain_console(self) -> list[dict[str, Any]]:
        """Console entries since the last call (warnings and errors only)."""
        got = [e for e in self.d.get_log("browser") if e["level"] in ("WARNING", "SEVERE")]
        self.console += got
        return got

    def sign_in(self, key: str) -> None:
        self.d.delete_all_cookies()
        self.get("/ui/signin")
        field_ = self.css("#f-api_key")
        # autofocus: applied once the page has loaded, which a loaded machine delays
        self.wait(lambda: self.js("return document.activeElement.id") == "f-api_key", 10,
                  "the key field has the focus (autofocus)")
        field_.send_keys(key + "\n")  # Enter submits: no mouse needed
        self.wait(lambda: self.d.current_url.endswith("/ui/jobs"), 20, "signed in")

    def screenshot(self, name: str) -> list[Path]:
        """The whole page at 1280 px and 390 px wide (CSS pixels; the CSS's narrow layout
        applies below 600 px)."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        out = []
        for w in WIDTHS:
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": w, "height": 900, "deviceScaleFactor": 1, "mobile": False})
            time.sleep(0.3)  # re-layout, lazy images
            h = int(self.js("return Math.max(document.documentElement.scrollHeight, 400)"))
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": w, "height": min(h, 5000), "deviceScaleFactor": 1, "mobile": False})
            time.sleep(0.2)
            path = SHOTS / f"{name}-{w}.png"
            self.d.save_screenshot(str(path))
            out.append(path)
        self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return out

    def images_loaded(self) -> list[tuple[str, int]]:
        return [(str(s), int(w)) for s, w in self.js(
            "return Array.from(document.images).map(i => [i.src, i.complete ? i.naturalWidth "
            ": -1])")]
