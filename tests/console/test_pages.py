"""The console over real HTTP: sessions, cookie flags, CSRF, scoping, escaping."""

from __future__ import annotations

import re

import pytest
from api.conftest import Server  # type: ignore[import-not-found]

from sia.api.authorization import PUBLIC, ROUTE_ROLES, SESSION_ROLES
from sia.api.console.session import PRE_COOKIE, SESSION_COOKIE

from .conftest import browser, csrf_of, sign_in, snoozed, store_alert, verdicts


def set_cookie(response: object, name: str) -> str:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(f"{name}=")]
    assert len(found) == 1, headers
    return str(found[0])


def test_every_console_page_needs_a_session_role_or_is_the_door() -> None:
    console = {k for k in ROUTE_ROLES if k[1].startswith("/console")}
    door = {("GET", "/console/sign-in"), ("POST", "/console/sign-in"),
            ("POST", "/console/sign-out"), ("GET", "/console/static/{name}")}
    assert all(ROUTE_ROLES[k] == PUBLIC for k in console)  # no bearer key: a cookie
    assert set(SESSION_ROLES) == console - door


def test_signing_in_sets_a_protected_session_cookie_and_opens_the_inbox(
        server: Server) -> None:
    store_alert(server, "C1")
    with browser(server) as client:
        assert client.get("/console").headers["location"] == "/console/sign-in"
        form = client.get("/console/sign-in")
        pre = set_cookie(form, PRE_COOKIE).lower()
        assert "httponly" in pre and "samesite=lax" in pre
        assert 'for="key"' in form.text and 'id="key"' in form.text  # a labelled field
        signed = client.post("/console/sign-in",
                             data={"key": server.keys["rep"], "csrf": csrf_of(form)})
        assert signed.status_code == 303 and signed.headers["location"] == "/console"
        cookie = set_cookie(signed, SESSION_COOKIE)
        flags = [f.strip().lower() for f in cookie.split(";")]
        assert "httponly" in flags and "samesite=lax" in flags and "path=/console" in flags
        assert "secure" not in flags  # plain http: a Secure cookie would never come back
        assert any(f.startswith("max-age=") and 0 < int(f[8:]) <= 12 * 3600 for f in flags)
        value = cookie.split(";")[0].split("=", 1)[1]
        assert server.keys["rep"] not in value and server.keys["rep"].split("_", 2)[2] not in value
        page = client.get("/console")
        assert page.status_code == 200 and "C1 is quiet" in page.text
        assert "rep key &#34;test rep&#34;, rep R1" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_the_session_cookie_is_secure_over_https(server: Server) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1, as from a TLS proxy in front
    with browser(server, headers={"X-Forwarded-Proto": "https"}) as client:
        form = client.get("/console/sign-in")
        pre = set_cookie(form, PRE_COOKIE)
        assert "secure" in [f.strip().lower() for f in pre.split(";")]
        # the client talks plain http to the "proxy" side, so it keeps Secure cookies to
        # itself: send the sign-in form's cookie back by hand, as a browser over https would
        signed = client.post("/console/sign-in", headers={"Cookie": pre.split(";")[0]},
                             data={"key": server.keys["rep"], "csrf": csrf_of(form)})
        assert signed.status_code == 303, signed.text
        flags = [f.strip().lower() for f in set_cookie(signed, SESSION_COOKIE).split(";")]
        assert "secure" in flags and "httponly" in flags


@pytest.mark.parametrize(("who", "status", "says"), [
    (None, 401, "Unknown or revoked API key."),
    ("crm", 403, "A crm key cannot use the console"),
])
def test_a_wrong_key_or_a_crm_key_gets_no_session(server: Server, who: str | None,
                                                  status: int, says: str) -> None:
    key = server.keys[who] if who else server.keys["rep"] + "x"
    with browser(server) as client:
        answer = sign_in(client, key)
        assert answer.status_code == status and says in answer.text
        assert not any(h.startswith(f"{SESSION_COOKIE}=")
                       for h in answer.headers.get_list("set-cookie"))
        assert client.get("/console").status_code == 303


def test_signing_out_ends_the_session_even_for_a_copied_cookie(server: Server) -> None:
    with browser(server) as client:
        sign_in(client, server.keys["rep"])
        copied = client.cookies[SESSION_COOKIE]
        page = client.get("/console")
        assert client.post("/console/sign-out", data={}).status_code == 403  # no token
        out = client.post("/console/sign-out", data={"csrf": csrf_of(page)})
        assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
        assert f'{SESSION_COOKIE}=""' in set_cookie(out, SESSION_COOKIE)
        assert client.get("/console").status_code == 303
    with browser(server, cookies={SESSION_COOKIE: copied}) as thief:
        assert thief.get("/console").headers["location"] == "/console/sign-in"


def test_revoking_the_key_ends_its_sessions(server: Server) -> None:
    with browser(server) as client:
        sign_in(client, server.keys["rep"])
        assert client.get("/console").status_code == 200
        key_id = server.keys["rep"].split("_")[1]
        server.runtime.keys.revoke(key_id)
        assert client.get("/console").status_code == 303


def test_a_forged_or_tampered_cookie_is_no_session(server: Server) -> None:
    with browser(server) as client:
        sign_in(client, server.keys["rep"])
        real = client.cookies[SESSION_COOKIE]
    payload, mac = real.split(".")
    for forged in (f"{payload}.{mac[:-2]}xx", f"{payload}x.{mac}", "nonsense", payload):
        with browser(server, cookies={SESSION_COOKIE: forged}) as client:
            assert client.get("/console").status_code == 303


def test_every_post_without_the_right_csrf_token_is_refused(server: Server) -> None:
    a = store_alert(server, "C1")
    path = f"/console/alerts/{a.alert_id}/feedback"
    with browser(server) as other:
        sign_in(other, server.keys["rep"])
        foreign = csrf_of(other.get("/console"))  # another session's (valid) token
    with browser(server) as client:
        assert sign_in(client, server.keys["rep"]).status_code == 303
        token = csrf_of(client.get("/console"))
        assert foreign != token
        for data in ({"verdict": "useful"}, {"verdict": "useful", "csrf": "x" * 43},
                     {"verdict": "useful", "csrf": foreign}, {"verdict": "useful", "csrf": ""}):
            refused = client.post(path, data=data)
            assert refused.status_code == 403, data
            assert "did not come from this console" in refused.text
        cross = client.post(path, data={"verdict": "useful", "csrf": token},
                            headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403 and "another site" in cross.text
        assert verdicts(server) == []
        assert client.post(path, data={"verdict": "useful", "csrf": token}).status_code == 303
    assert verdicts(server) == [(a.alert_id, "useful", "console", "R1")]
    with browser(server) as client:  # the sign-in form too
        client.get("/console/sign-in")
        for data in ({"key": server.keys["rep"]}, {"key": server.keys["rep"], "csrf": foreign}):
            assert client.post("/console/sign-in", data=data).status_code == 403
        assert SESSION_COOKIE not in client.cookies


def test_a_rep_sees_and_answers_only_their_own_alerts(server: Server) -> None:
    mine = store_alert(server, "C1", rep="R1")
    theirs = store_alert(server, "C3", rep="R2", title="C3 belongs to R2")
    with browser(server) as client:
        sign_in(client, server.keys["rep"])
        page = client.get("/console")
        assert "C1 is quiet" in page.text and "C3 belongs to R2" not in page.text
        assert theirs.alert_id not in page.text
        token = csrf_of(page)
        stolen = client.post(f"/console/alerts/{theirs.alert_id}/feedback",
                             data={"verdict": "useful", "csrf": token})
        assert stolen.status_code == 404
        nothing = client.post("/console/alerts/no-such-alert/feedback",
                              data={"verdict": "useful", "csrf": token})
        assert nothing.status_code == 404
        bad = client.post(f"/console/alerts/{mine.alert_id}/feedback",
                          data={"verdict": "delete_everything", "csrf": token})
        assert bad.status_code == 422
        snooze = client.post(f"/console/alerts/{mine.alert_id}/feedback",
                             data={"verdict": "snooze_7d", "csrf": token})
        assert snooze.status_code == 303
        assert snooze.headers["location"] == f"/console?saved=snooze_7d#alert-{mine.alert_id}"
        after = client.get(snooze.headers["location"])
        assert "Saved: Snooze this customer for 7 days." in after.text
        assert "You said: Snooze this customer for 7 days" in after.text
        assert re.search(r'value="snooze_7d"\s+aria-pressed="true"', after.text)
    assert verdicts(server) == [(mine.alert_id, "snooze_7d", "console", "R1")]
    assert snoozed(server) == [("customer", "C1", "R1")]
    with server.client("rep") as api:  # the API reports the same verdict
        detail = api.get(f"/v1/alerts/{mine.alert_id}").json()
    assert [f["verdict"] for f in detail["feedback"]] == ["snooze_7d"]


def test_the_inbox_puts_the_newest_day_first_then_the_most_at_stake(server: Server) -> None:
    store_alert(server, "OLD", days=-3, value=9000.0)
    store_alert(server, "SMALL", days=0, value=10.0)
    store_alert(server, "BIG", days=0.1, value=5000.0)
    store_alert(server, "MID", days=0.2, value=500.0)
    with browser(server) as client:
        sign_in(client, server.keys["rep"])
        text = client.get("/console").text
    order = [text.index(f"{c} is quiet") for c in ("BIG", "MID", "SMALL", "OLD")]
    assert order == sorted(order)
    assert "5,000 at stake" in text and "days quiet" in text and "order-1" in text


def test_managers_see_their_team_read_only(server: Server) -> None:
    uk = store_alert(server, "C1", rep="R1", team="UK")
    store_alert(server, "D1", rep="R7", team="DE", title="A German alert")
    with browser(server) as client:
        sign_in(client, server.keys["manager_uk"])
        page = client.get("/console")
        assert "C1 is quiet" in page.text and "A German alert" not in page.text
        assert "Read only" in page.text and 'name="verdict"' not in page.text
        refused = client.post(f"/console/alerts/{uk.alert_id}/feedback",
                              data={"verdict": "useful", "csrf": csrf_of(page)})
        assert refused.status_code == 403
    with browser(server) as client:
        sign_in(client, server.keys["admin"])
        page = client.get("/console")
        assert "C1 is quiet" in page.text and "A German alert" in page.text
    assert verdicts(server) == []


def test_hostile_alert_text_is_escaped(server: Server) -> None:
    store_alert(server, "C<1>", title="<script>alert('title')</script>",
                explanation='"><img src=x onerror=alert(1)>',
                facts={"<b>key</b>": "<i>value</i>"})
    with browser(server) as client:
        sign_in(client, server.keys["rep"])
        page = client.get("/console")
    assert page.status_code == 200
    for raw in ("<script>alert(", "<img src=x", "<b>key", "<i>value", "C<1>"):
        assert raw not in page.text
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in page.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_the_stylesheet_is_served_from_the_package(server: Server) -> None:
    with browser(server) as client:
        css = client.get("/console/static/console.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert "@media (max-width: 480px)" in css.text
        for name in ("../routes/console.py", "base.html", "nope.css"):
            assert client.get(f"/console/static/{name}").status_code == 404


def test_every_answer_says_how_long_the_server_spent_on_it(server: Server) -> None:
    store_alert(server, "C1")
    with browser(server) as client:
        assert sign_in(client, server.keys["rep"]).status_code == 303
        for answer in (client.get("/console"), client.get("/console/sign-in"),
                       client.get("/healthz")):
            timing = answer.headers.get_list("server-timing")
            assert len(timing) == 1, answer.headers
            found = re.fullmatch(r"app;dur=(\d+\.\d\d)", timing[0])
            assert found and 0 < float(found.group(1)) < 60_000, timing
