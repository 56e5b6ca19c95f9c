"""Dashboard sessions in real Chromium across processes and restarts: sign in at one
server (``srflow serve --workers 2``: two uvicorn processes), continue at a second server
on the same data directory (another process, another port: the cookie is per host), then
across a restart of the first; signing out at the second ends the session at the first.
Sessions live in the registry database (app/ui/session.py), so no sticky routing is
needed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

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
class Server:
    """One ``srflow serve`` on the shared data directory."""

    port: int
    workers: int
    data: Path
    log: Path
    proc: object = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [PY, "-m", "cli.service", "serve", "--port", str(self.port),
               "--data-dir", str(self.data), "--workers", str(self.workers)]
        self.proc = spawn(cmd, self.env, self.log)
        wait_until(lambda: healthy(self.url, False), 120, f"srflow serve :{self.port}",
                   [self.proc])  # type: ignore[list-item]

    def stop(self) -> None:
        stop(self.proc, timeout=30)  # type: ignore[arg-type]

    def api_processes(self) -> int:
        """uvicorn's worker processes in this server's process group (spawned children)."""
        pgid = self.proc.pid  # type: ignore[attr-defined]
        n = 0
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                if os.getpgid(int(d.name)) != pgid:
                    continue
                cmd = (d / "cmdline").read_bytes()
            except (OSError, ProcessLookupError):
                continue
            n += b"spawn_main" in cmd
        return n


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, str]]:
    d = tmp_path_factory.mktemp("ui-two-servers")
    data = d / "data"
    env = service_env(data, None)
    a = Server(free_port(), 2, data, d / "a.log", env=env)
    b = Server(free_port(), 1, data, d / "b.log", env=env)
    try:
        a.start()
        b.start()
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=a.url, timeout=30, headers=admin) as c:
            assert c.post("/v1/groups", json={"name": "lab-s"}).status_code == 201
            assert c.post("/v1/users", json={"name": "sam", "groups": ["lab-s"]}
                          ).status_code == 201
            key = c.post("/v1/users/sam/keys", json={}).json()["key"]
        yield a, b, key
    finally:
        for s in (b, a):
            if s.proc is not None:
                s.stop()


@pytest.fixture(scope="module")
def browser(servers: tuple[Server, Server, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    d = start_chromium(tmp_path_factory.mktemp("downloads"))
    try:
        yield Browser(d, servers[0].url, tmp_path_factory.mktemp("unused"))
    finally:
        d.quit()


def _signed_in_as(b: Browser, url: str, user: str) -> None:
    b.d.get(url)
    assert "/ui/signin" not in b.d.current_url, f"{url} asked to sign in again"
    assert b.css(".who").text.startswith(user)


def test_sign_in_at_one_process_continue_at_another_and_after_a_restart(
        browser: Browser, servers: tuple[Server, Server, str]) -> None:
    a, b_srv, key = servers
    b = browser
    assert a.api_processes() == 2  # srflow serve --workers 2
    b.sign_in(key)  # at a
    for page in ("/ui/jobs", "/ui/models", "/ui/submit/hmc", "/ui/jobs"):
        _signed_in_as(b, a.url + page, "sam")  # whichever of a's processes answers
    _signed_in_as(b, b_srv.url + "/ui/jobs", "sam")  # another server, never signed in to
    a.stop()
    a.start()  # a restart: nothing of the session was in a's memory
    assert a.api_processes() == 2
    _signed_in_as(b, a.url + "/ui/models", "sam")
    b.d.get(b_srv.url + "/ui/jobs")
    b.css("form.signout button").click()  # sign out at the other server ...
    b.wait(lambda: "/ui/signin" in b.d.current_url, 20, "signed out")
    b.d.get(a.url + "/ui/jobs")  # ... ends the session at this one too
    b.wait(lambda: "/ui/signin" in b.d.current_url, 20, "asked to sign in at a")
    bad = [e for e in b.drain_console() if e["level"] == "SEVERE"]
    assert not bad, bad
