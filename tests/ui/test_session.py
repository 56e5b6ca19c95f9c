"""Sign-in, the session cookie's flags, CSRF on every form, sign-out."""

from __future__ import annotations

from http.cookies import SimpleCookie

from app.ui.session import UISettings
from tests.ui.lab import Lab, csrf_of, sign_in


def _set_cookies(headers: list[str]) -> dict[str, str]:
    """Set-Cookie lines by cookie name (the raw line, to read its attributes)."""
    out = {}
    for line in headers:
        jar: SimpleCookie = SimpleCookie()
        jar.load(line)
        for name in jar:
            out[name] = line
    return out


def _signin_post(c, key: str, **extra: str):  # type: ignore[no-untyped-def]
    page = c.get("/ui/signin")
    return c.post("/ui/signin", data={"csrf_token": csrf_of(page.text), "api_key": key,
                                      "next": "/ui/jobs", **extra}, headers=extra.pop("h", {}))


def test_pages_need_a_session_and_next_is_never_off_site(lab: Lab) -> None:
    c = lab.user("anon")
    r = c.get("/ui/jobs?kind=hmc")
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/signin?next=/ui/jobs%3Fkind%3Dhmc"
    for bad in ("//evil.example/x", "https://evil.example", "/ui/..//evil", "/v1/jobs"):
        page = c.get("/ui/signin", params={"next": bad})
        assert 'name="next" value="/ui/jobs"' in page.text, bad


def test_session_cookie_flags_over_http_and_https(lab: Lab) -> None:
    c = lab.user("alice")
    r = _signin_post(c, lab.keys["alice"])
    assert r.status_code == 303
    line = _set_cookies(r.headers.get_list("set-cookie"))["srflow_session"]
    attrs = [a.strip().lower() for a in line.split(";")]
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/ui" in attrs
    assert "secure" not in attrs  # plain http (a browser would drop a Secure cookie)
    value = SimpleCookie(line)["srflow_session"].value
    assert lab.keys["alice"] not in line and len(value) >= 40  # a random id, not the key

    tls = lab.user("alice", base_url="https://testserver")
    r = _signin_post(tls, lab.keys["alice"])
    line = _set_cookies(r.headers.get_list("set-cookie"))["srflow_session"]
    attrs = [a.strip().lower() for a in line.split(";")]
    assert "secure" in attrs and "httponly" in attrs and "samesite=strict" in attrs
    assert tls.get("/ui/jobs").status_code == 200  # the Secure cookie works over https


def test_forwarded_proto_is_trusted_only_when_configured(lab: Lab) -> None:
    c = lab.user("alice")
    page = c.get("/ui/signin")
    fwd = {"X-Forwarded-Proto": "https"}
    r = c.post("/ui/signin", headers=fwd, data={"csrf_token": csrf_of(page.text),
                                                "api_key": lab.keys["alice"]})
    assert "secure" not in r.headers["set-cookie"].lower().split("; ")
    state = lab.client.app.state  # type: ignore[attr-defined]
    saved = state.ui_settings
    state.ui_settings = UISettings(trust_forwarded_proto=True)
    try:
        page = c.get("/ui/signin")
        r = c.post("/ui/signin", headers=fwd, data={"csrf_token": csrf_of(page.text),
                                                    "api_key": lab.keys["alice"]})
    finally:
        state.ui_settings = saved
    session_line = _set_cookies(r.headers.get_list("set-cookie"))["srflow_session"]
    assert "secure" in [a.strip().lower() for a in session_line.split(";")]


def test_wrong_key_is_refused_next_to_the_field(lab: Lab) -> None:
    c = lab.user("nobody")
    r = _signin_post(c, "srf_deadbeef_not-a-key")
    assert r.status_code == 401
    assert "srflow_session" not in r.headers.get("set-cookie", "")
    assert 'id="e-api_key"' in r.text and "unknown, revoked or expired" in r.text
    assert 'aria-describedby="e-api_key"' in r.text


def test_signin_without_its_token_is_refused(lab: Lab) -> None:
    c = lab.user("alice")
    c.get("/ui/signin")
    r = c.post("/ui/signin", data={"api_key": lab.keys["alice"]})
    assert r.status_code == 403 and "srflow_session" not in r.headers.get("set-cookie", "")
    r = c.post("/ui/signin", data={"api_key": lab.keys["alice"], "csrf_token": "forged"})
    assert r.status_code == 403


def test_every_form_post_without_the_token_is_refused(lab: Lab) -> None:
    c = lab.user("alice")
    token = sign_in(c, lab.keys["alice"])
    form = {"spec.dim": "2", "spec.L": "8", "spec.kappa": "0.2", "spec.lam": "0.01",
            "spec.n_samples": "16", "idempotency_key": "k" * 32}
    before = lab.api("alice", "GET", "/v1/jobs").json()["operations"]  # type: ignore[attr-defined]
    assert c.post("/ui/submit/hmc", data=form).status_code == 403
    assert c.post("/ui/submit/hmc", data={**form, "csrf_token": "x" * 43}).status_code == 403
    other_origin = {"Origin": "https://evil.example"}
    r = c.post("/ui/submit/hmc", data={**form, "csrf_token": token}, headers=other_origin)
    assert r.status_code == 403
    after = lab.api("alice", "GET", "/v1/jobs").json()["operations"]  # type: ignore[attr-defined]
    assert len(after) == len(before)  # nothing was submitted
    assert c.post("/ui/jobs/some-id/cancel", data={}).status_code == 403
    assert c.post("/ui/models/m/aliases", data={"alias": "best", "version": "1"}).status_code == 403
    assert c.post("/ui/signout", data={}).status_code == 403
    assert c.get("/ui/jobs").status_code == 200  # still signed in
    # another session's token is no good either
    other = lab.user("carol")
    carol_token = sign_in(other, lab.keys["carol"])
    assert c.post("/ui/signout", data={"csrf_token": carol_token}).status_code == 403


def test_signout_ends_the_session_for_good(lab: Lab) -> None:
    c = lab.user("alice")
    token = sign_in(c, lab.keys["alice"])
    cookie = c.cookies.get("srflow_session")
    r = c.post("/ui/signout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/ui/signin"
    assert c.get("/ui/jobs").status_code == 303
    replay = lab.user("mallory")
    replay.cookies.set("srflow_session", cookie or "", path="/ui")
    assert replay.get("/ui/jobs").status_code == 303  # the old cookie is dead server-side


def test_pages_send_a_strict_content_security_policy(lab: Lab) -> None:
    c = lab.user("alice")
    sign_in(c, lab.keys["alice"])
    for path in ("/ui/signin", "/ui/jobs", "/ui/submit/hmc", "/ui/models"):
        csp = c.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp


def test_a_revoked_key_ends_the_dashboard_session(lab: Lab) -> None:
    c = lab.user("carol")
    admin = {"Authorization": f"Bearer {lab.keys['admin']}"}
    r = lab.client.post("/v1/users/carol/keys", json={}, headers=admin)
    key, prefix = r.json()["key"], r.json()["prefix"]
    sign_in(c, key)
    assert c.get("/ui/jobs").status_code == 200
    assert lab.client.delete(f"/v1/keys/{prefix}", headers=admin).status_code == 204
    r = c.get("/ui/jobs")
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/signin")
