"""The web console in a real browser (headless Chromium, driven by
Selenium through the system's chromedriver), against a real Warden binary:
sign-in, a two-person review done by two reviewers in two browsers while a
real agent waits on its stream, and a role that may not act: no button, and
a refusal when it tries anyway. Screenshots of each page are kept in
$WARDEN_CONSOLE_SCREENSHOTS (default target/console-screenshots)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledgerkit import REPO_ROOT
from chromium import open_chromium
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from test_integration import ALLOW_INPUT, StreamReader, bundles, mint  # noqa: F401 - bundles is a fixture
from wardenproc import WardenServer, binary

import warden

pytestmark = pytest.mark.integration

WAIT = 20.0
SHOTS = Path(os.environ.get("WARDEN_CONSOLE_SCREENSHOTS") or REPO_ROOT / "target" / "console-screenshots")
REFUND = {"amount": 1500, "currency": "EUR", "customer": {"id": "c1"}}


@pytest.fixture
def browsers() -> Iterator[Callable[[], WebDriver]]:
    """Opens browsers, each with its own profile (so its own cookies)."""
    opened: list[WebDriver] = []

    def open_one() -> WebDriver:
        d = open_chromium(script_timeout=WAIT, window_size="1280,900")
        opened.append(d)
        return d

    yield open_one
    for d in opened:
        d.quit()


def shot(d: WebDriver, name: str, at: WebElement | None = None) -> None:
    """Saves the page as the user sees it: from the top, or around `at`."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if at is None:
        d.execute_script("window.scrollTo(0, 0)")
    else:
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", at)
    assert d.save_screenshot(str(SHOTS / f"{name}.png")), name


def wait_for(d: WebDriver, what: str, found: Callable[[WebDriver], Any]) -> Any:
    try:
        # The queue redraws itself: an element read during a redraw is stale.
        return WebDriverWait(d, WAIT, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(found)
    except Exception as e:  # noqa: BLE001 - the page's text says more than the timeout
        body = d.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"{what} did not happen within {WAIT} s; the page shows:\n{body}") from e


def sign_in(d: WebDriver, url: str, token: str, *, keyboard: bool = False) -> None:
    d.get(f"{url}/ui")
    field = wait_for(d, "the sign-in form", lambda d: d.find_element(By.ID, "token"))
    field.clear()
    if keyboard:
        # The form has the focus on load; Enter submits it.
        assert d.switch_to.active_element == field
        field.send_keys(token + Keys.ENTER)
    else:
        field.send_keys(token)
        d.find_element(By.ID, "sign-in").click()


def card(d: WebDriver, execution_id: str) -> WebElement:
    return wait_for(
        d,
        f"the review of {execution_id}",
        lambda d: d.find_element(By.CSS_SELECTOR, f'article.review[data-execution="{execution_id}"]'),
    )


def open_section(d: WebDriver, name: str) -> None:
    """Follows the navigation bar's link to a section, as a person would."""
    wait_for(d, f"the {name} link", lambda d: d.find_element(By.CSS_SELECTOR, f"a[data-nav={name}]")).click()


def start_run(url: str, token: str, definition: dict[str, Any], run_input: dict[str, Any]) -> str:
    """Uploads a workflow definition and starts a run of it: the run's id."""
    auth = {"Authorization": f"Bearer {token}"}
    name = definition["metadata"]["name"]
    r = httpx.put(f"{url}/v1/workflows/{name}", json=definition, headers=auth)
    assert r.is_success, r.text
    r = httpx.post(f"{url}/v1/workflows/{name}/runs", json={"input": run_input}, headers=auth)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def on_card(d: WebDriver, execution_id: str, selector: str, act: Callable[[WebElement], Any]) -> None:
    """Acts on an element of a review's card, again if a redraw replaced it."""
    wait_for(d, f"{selector} of {execution_id}", lambda d: act(card(d, execution_id).find_element(By.CSS_SELECTOR, selector)) or True)


def in_page(d: WebDriver, script: str, *args: Any) -> Any:
    """Runs `script` (an async function body) in the page, as the page would."""
    return d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"(async (...args) => {{ {script} }})(...Array.from(arguments).slice(0, -1)).then(done, e => done(String(e)));",
        *args,
    )


def waiting_refund(admin: warden.Client, url: str, suffix: str) -> tuple[warden.Client, StreamReader, str, dict[str, Any]]:
    """An agent holding an execution whose refund waits for two reviewers."""
    agent_id = f"console-agent-{suffix}"
    agent = mint(admin, url, agent_id, ["agent"], agent_ids=[agent_id])
    reader = StreamReader(agent.agent_stream(agent_id).open())
    exe = admin.create_execution(agent_id, {"claim": f"C-{suffix}"})["id"]
    assert reader.next("execution.assigned").json()["execution_id"] == exe
    answer = agent.intent(exe, "invoke_tool", tool="payments.refund", remote=False, arguments=REFUND)
    assert (answer["outcome"], answer["state"]) == ("require_approval", "blocked"), answer
    return agent, reader, exe, answer["step"]


def test_two_reviewers_in_two_browsers_release_the_waiting_agent(
    warden_server: WardenServer, admin: warden.Client, bundles: dict[str, Any], browsers: Callable[[], WebDriver]  # noqa: F811
) -> None:
    url = warden_server.url
    suffix = secrets.token_hex(3)
    alice = admin.create_token(f"alice-{suffix}", ["reviewer"], subject=f"alice-{suffix}@bank.example")
    bob = admin.create_token(f"bob-{suffix}", ["reviewer"], subject=f"bob-{suffix}@bank.example")
    agent, reader, exe, step = waiting_refund(admin, url, suffix)
    try:
        a = browsers()
        # A wrong token is refused on the page, with the API's code.
        sign_in(a, url, "wdn_not-a-real-token")
        error = wait_for(a, "the sign-in error", lambda d: d.find_element(By.ID, "signin-error").text or None)
        assert "invalid_token" in error
        shot(a, "01-sign-in-refused")

        sign_in(a, url, alice["token"])
        c = card(a, exe)
        # A reviewer is offered what a reviewer may read, nothing else.
        shown = [x.get_attribute("data-nav") for x in a.find_elements(By.CSS_SELECTOR, "[data-nav]") if x.is_displayed()]
        assert shown == ["reviews", "runs"], shown
        # What the reviewer needs to decide, readable, with the exact hash.
        assert c.find_element(By.CSS_SELECTOR, ".args-hash").text == step["args_hash"]
        assert "0 of 2" in c.find_element(By.CSS_SELECTOR, ".approvals").text
        assert "payments.refund" in c.find_element(By.TAG_NAME, "h2").text
        shown = c.find_element(By.CSS_SELECTOR, "pre.arguments").text
        assert '"amount": 1500' in shown and '"currency": "EUR"' in shown
        assert any("two reviewers" in li.text for li in c.find_elements(By.CSS_SELECTOR, "ul.reasons li"))
        # The session cookie is out of the page's reach.
        assert "warden_session" not in a.execute_script("return document.cookie")
        shot(a, "02-review-waiting")

        # A rejection needs a reason; Alice approves with one.
        on_card(a, exe, "textarea[name=reason]", lambda e: e.send_keys("claim C checked against the policy"))
        on_card(a, exe, "button.approve", lambda e: e.click())
        wait_for(a, "Alice's approval counted", lambda d: "1 of 2" in card(d, exe).find_element(By.CSS_SELECTOR, ".approvals").text)
        wait_for(a, "Alice named", lambda d: f"alice-{suffix}@bank.example" in card(d, exe).find_element(By.CSS_SELECTOR, ".approvals").text)
        shot(a, "03-one-of-two")

        # Alice cannot count twice: the API refuses, the page says why.
        on_card(a, exe, "button.approve", lambda e: e.click())
        wait_for(a, "the refusal shown", lambda d: "approval_reused" in d.find_element(By.ID, "toast").text)

        # Bob, in another browser, completes the two-person review.
        b = browsers()
        sign_in(b, url, bob["token"], keyboard=True)
        on_card(b, exe, "textarea[name=reason]", lambda e: e.send_keys("second pair of eyes"))
        on_card(b, exe, "button.approve", lambda e: e.click())
        wait_for(
            b,
            "the review to leave the queue",
            lambda d: not d.find_elements(By.CSS_SELECTOR, f'article.review[data-execution="{exe}"]'),
        )
        shot(b, "04-queue-after-second-approval")

        # The agent was waiting: it is given the step now and finishes.
        assigned = reader.next("step.assigned")
        assert assigned.json()["step_id"] == step["id"]
        agent.step_result(step["id"], "succeeded", output={"refund": "R-1"})
        assert reader.next("step.result").json()["state"] == "succeeded"
        assert agent.intent(exe, "complete", output={"refunded": True})["state"] == "completed"

        # The evidence names both reviewers, as the API records them.
        history = admin.execution_history(exe)
        text = str(history)
        assert f"alice-{suffix}@bank.example" in text and f"bob-{suffix}@bank.example" in text

        # The execution, found by its agent, as a timeline of ledger entries.
        open_section(a, "runs")
        agent_box = wait_for(a, "the executions filter", lambda d: d.find_element(By.ID, "exec-agent"))
        agent_box.send_keys(f"console-agent-{suffix}")
        a.find_element(By.XPATH, "//form[.//input[@id='exec-agent']]//button").click()
        wait_for(a, "only that agent's execution", lambda d: [r.get_attribute("data-execution") for r in d.find_elements(By.CSS_SELECTOR, "#executions tr[data-execution]")] == [exe])
        a.find_element(By.LINK_TEXT, exe).click()
        wait_for(a, "the timeline", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#execution ol.timeline li")) == len(history["entries"]))
        kinds = [li.get_attribute("data-kind") for li in a.find_elements(By.CSS_SELECTOR, "#execution ol.timeline li")]
        assert kinds == [e["kind"] for e in history["entries"]]
        hrefs = [x.get_attribute("href") for x in a.find_elements(By.CSS_SELECTOR, "#execution a.ledger-link")]
        assert [int(h.rsplit("/", 1)[1]) for h in hrefs] == [e["ledger_index"] for e in history["entries"]]
        assert "completed" in a.find_element(By.ID, "execution").text
        shot(a, "12-execution-timeline")
    finally:
        reader.close()
        agent.close()


def test_a_role_that_may_not_act_sees_no_button_and_is_refused(
    warden_server: WardenServer, admin: warden.Client, bundles: dict[str, Any], browsers: Callable[[], WebDriver]  # noqa: F811
) -> None:
    url = warden_server.url
    suffix = secrets.token_hex(3)
    auditor = admin.create_token(f"auditor-{suffix}", ["auditor"])
    agent, reader, exe, step = waiting_refund(admin, url, suffix)
    try:
        d = browsers()
        sign_in(d, url, auditor["token"])
        c = card(d, exe)
        assert c.find_elements(By.CSS_SELECTOR, "button.approve, button.reject, textarea") == []
        assert "may read the queue but not approve" in d.find_element(By.ID, "reviews-status").text
        shot(d, "05-auditor-read-only")

        # Forcing it from the page, CSRF token and all: the API refuses.
        out = in_page(
            d,
            """
            const s = await (await fetch('/ui/session')).json();
            const r = await fetch(`/v0/executions/${args[0]}/approvals`, {method: 'POST',
              headers: {'Content-Type': 'application/json', 'X-Warden-CSRF': s.csrf_token},
              body: JSON.stringify({step_id: args[1], decision: 'approve', reason: 'forced', args_hash: args[2]})});
            return [r.status, (await r.json()).code];
            """,
            exe,
            step["id"],
            step["args_hash"],
        )
        assert out == [403, "not_a_reviewer"], out
        # And without the CSRF token, nothing reaches the route.
        out = in_page(
            d,
            """
            const r = await fetch('/v1/audit/events', {method: 'POST', headers: {'Content-Type': 'application/json'},
              body: JSON.stringify({timestamp: '2026-12-06T00:00:00Z', action: 'tool.invoke', result: 'allowed'})});
            return [r.status, (await r.json()).code];
            """,
        )
        assert out == [403, "csrf_failed"], out
        assert admin.approvals() and any(w["execution_id"] == exe for w in admin.approvals())

        # Revoking the token ends the session: the next refresh asks to sign in.
        admin.revoke_token(auditor["id"])
        d.find_element(By.XPATH, "//button[text()='Refresh']").click()
        wait_for(d, "the sign-in page", lambda d: "session has ended" in d.find_element(By.ID, "signin-error").text)
        shot(d, "06-session-ended")

        # Sign-out ends a session too, on the server, not only in the page.
        again = admin.create_token(f"auditor2-{suffix}", ["auditor"])
        sign_in(d, url, again["token"])
        card(d, exe)
        cookie = d.get_cookie("warden_session")
        assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
        d.find_element(By.ID, "sign-out").click()
        wait_for(d, "the sign-in form", lambda d: d.find_element(By.ID, "token"))
        assert d.get_cookie("warden_session") is None
        # The old cookie, replayed, no longer opens anything.
        replay = httpx.get(f"{url}/v1/whoami", headers={"Cookie": f"warden_session={cookie['value']}"})
        assert (replay.status_code, replay.json()["code"]) == (401, "session_ended")
    finally:
        reader.close()
        agent.close()


IMPACT_R1 = """package impactdemo

default allow := false

allow if input.amount < 100
"""

IMPACT_R2 = """package impactdemo

default allow := false

allow if {
    input.amount < 1000
    not input.blocked
}
"""


def test_impact_before_activation_then_activate(
    warden_server: WardenServer, admin: warden.Client, browsers: Callable[[], WebDriver]
) -> None:
    url = warden_server.url
    suffix = secrets.token_hex(3)
    name = f"impact-{suffix}"
    admin.push_bundle(warden.build_bundle({"impactdemo/p.rego": IMPACT_R1}, revision="r1", roots=["impactdemo"]), name, activate=True)
    # History: 50 allowed, 500 denied, 50 blocked allowed (r1 ignores `blocked`).
    for amount, blocked in ((50, False), (500, False), (50, True)):
        admin.decide("impactdemo/allow", {"amount": amount, "blocked": blocked}, context={"workflow_id": f"wf-{suffix}"})
    admin.push_bundle(warden.build_bundle({"impactdemo/p.rego": IMPACT_R2}, revision="r2", roots=["impactdemo"]), name)
    compliance = admin.create_token(f"compliance-{suffix}", ["compliance"])

    d = browsers()
    sign_in(d, url, compliance["token"])
    open_section(d, "policies")
    wait_for(d, "the bundle list", lambda d: d.find_element(By.LINK_TEXT, name)).click()
    row = wait_for(d, "revision r2", lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-revision="r2"]'))
    assert "active" not in row.text
    row.find_element(By.CSS_SELECTOR, "button.impact").click()
    wait_for(d, "the impact", lambda d: "would change" in d.find_element(By.ID, "impact-status").text)
    status = d.find_element(By.ID, "impact-status").text
    # Decisions of other bundles (other tests' kernel decisions) are
    # counted apart, as the API counts them.
    assert "3 recorded decisions evaluated again: 2 would change, 1 would not, 0 could not be evaluated" in status, status
    groups = {g.get_attribute("data-change"): g for g in d.find_elements(By.CSS_SELECTOR, "section.impact-group")}
    assert groups["allow_to_deny"].find_element(By.CSS_SELECTOR, ".count").text == "1"
    assert groups["deny_to_allow"].find_element(By.CSS_SELECTOR, ".count").text == "1"
    assert f"wf-{suffix}" in d.find_element(By.ID, "impact").text
    # Each flip opens the decision's input (from the ledger) and both results.
    groups["allow_to_deny"].find_element(By.TAG_NAME, "summary").click()
    detail = wait_for(d, "the decision's input", lambda d: d.find_element(By.CSS_SELECTOR, ".impact-group.allow_to_deny .flip-detail pre"))
    assert '"blocked": true' in detail.text and '"amount": 50' in detail.text
    results = groups["allow_to_deny"].find_elements(By.CSS_SELECTOR, ".columns pre")
    assert [r.text for r in results] == ["true", "false"]
    shot(d, "07-impact-before-activation")

    # What changed between the two revisions, file by file, line by line.
    d.find_element(By.ID, "diff-button").click()
    rego = wait_for(d, "the diff", lambda d: d.find_element(By.CSS_SELECTOR, 'section.file-diff[data-path="impactdemo/p.rego"]'))
    assert rego.get_attribute("data-change") == "changed"
    added = [e.text for e in rego.find_elements(By.CSS_SELECTOR, ".dadd")]
    removed = [e.text for e in rego.find_elements(By.CSS_SELECTOR, ".ddel")]
    assert "+     not input.blocked" in added, added
    assert removed == ["- allow if input.amount < 100"], removed
    shot(d, "08-revision-diff")

    wait_for(d, "revision r2", lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-revision="r2"] button.activate')).click()
    wait_for(d, "r2 active", lambda d: "active" in d.find_element(By.CSS_SELECTOR, 'tr[data-revision="r2"]').text)
    assert admin.get_bundle(name)["active_revision"] == "r2"
    # And back.
    wait_for(d, "the roll-back button", lambda d: d.find_element(By.XPATH, "//button[starts-with(text(), 'Roll back')]")).click()
    wait_for(d, "r1 active again", lambda d: "active" in d.find_element(By.CSS_SELECTOR, 'tr[data-revision="r1"]').text)
    assert admin.get_bundle(name)["active_revision"] == "r1"


FLOW = {
    "apiVersion": "agentrc.workflow/v0.1",
    "kind": "AgentWorkflow",
    "metadata": {"name": "console-flow"},
    "spec": {
        "startAt": "Prepare",
        "states": {
            "Prepare": {"type": "Pass", "result": {"risk": "low"}, "resultPath": "$.triage", "next": "Route"},
            "Route": {
                "type": "Choice",
                "choices": [{"variable": "$.triage.risk", "stringEquals": "high", "next": "Reject"}],
                "default": "Approve",
            },
            "Approve": {"type": "Pass", "next": "Done"},
            "Reject": {"type": "Fail", "error": "Risk.High", "cause": "high risk"},
            "Done": {"type": "Succeed"},
        },
    },
}


def test_a_run_is_drawn_as_its_state_graph_with_its_path(
    warden_server: WardenServer, admin: warden.Client, browsers: Callable[[], WebDriver]
) -> None:
    url = warden_server.url
    run_id = start_run(url, warden_server.token, FLOW, {"claim": "C-9"})
    auditor = admin.create_token(f"auditor-runs-{secrets.token_hex(3)}", ["auditor"])

    d = browsers()
    sign_in(d, url, auditor["token"])
    open_section(d, "runs")
    wait_for(d, "the run in the list", lambda d: d.find_element(By.LINK_TEXT, run_id)).click()
    graph = wait_for(d, "the state graph", lambda d: d.find_element(By.CSS_SELECTOR, "svg.graph"))
    states = {g.get_attribute("data-state"): g.get_attribute("class") for g in graph.find_elements(By.CSS_SELECTOR, "g.state")}
    assert set(states) == {"Prepare", "Route", "Approve", "Reject", "Done"}, states
    for visited in ("Prepare", "Route", "Approve", "Done"):
        assert "unvisited" not in states[visited], (visited, states)
    assert "unvisited" in states["Reject"], states
    # Every history entry links to its ledger entry.
    links = d.find_elements(By.CSS_SELECTOR, "ol.timeline a.ledger-link")
    assert links and all(a.get_attribute("href").split("#/ledger/")[1].isdigit() for a in links)
    shot(d, "09-run-graph")
    links[0].click()
    wait_for(d, "the ledger entry", lambda d: "Entry hash" in d.find_element(By.ID, "entry").text)


def test_evidence_verified_in_the_browser_and_a_tampered_export_refused(
    warden_server: WardenServer,
    admin: warden.Client,
    bundles: dict[str, Any],  # noqa: F811
    browsers: Callable[[], WebDriver],
    tmp_path: Path,
) -> None:
    url = warden_server.url
    receipt = admin.audit({"timestamp": "2026-12-06T00:00:00Z", "action": "tool.invoke", "result": "allowed"})["events"][0]
    export = admin.export()
    good = tmp_path / "export.ndjson"
    good.write_bytes(export)
    # One byte of one entry changed: the verifier must name that entry.
    lines = export.split(b"\n")
    at = next(i for i, line in enumerate(lines) if b'"kind":"token.create"' in line)
    tampered_index = json.loads(lines[at])["index"]
    lines[at] = lines[at].replace(b'"kind":"token.create"', b'"kind":"token.cre4te"', 1)
    bad = tmp_path / "tampered.ndjson"
    bad.write_bytes(b"\n".join(lines))
    auditor = admin.create_token(f"auditor-ev-{secrets.token_hex(3)}", ["auditor"])
    keys = "\n".join(k["verifier"] for k in admin.ledger_keys())

    decision = admin.decide("agento/commissioning/routing/allow", ALLOW_INPUT)
    d = browsers()
    sign_in(d, url, auditor["token"])

    # A decision's entry, and its replay against the pinned bundle.
    d.get(f"{url}/ui#/ledger/{decision.receipt['index']}")  # type: ignore[index]
    wait_for(d, "the decision's entry", lambda d: "Entry hash" in d.find_element(By.ID, "entry").text)
    d.find_element(By.XPATH, "//button[text()='Replay this decision']").click()
    wait_for(d, "the replay", lambda d: "same result" in d.find_element(By.ID, "replay").text)

    open_section(d, "evidence")
    wait_for(d, "the checkpoint", lambda d: int(d.find_element(By.ID, "tree-size").text) > 0)
    d.find_element(By.ID, "verify-keys").send_keys(keys)
    # The export downloads with the session, as the API serves it.
    assert d.find_element(By.ID, "export-link").get_attribute("href") == f"{url}/v1/ledger/export"
    head = in_page(d, "const r = await fetch('/v1/ledger/export'); return [r.status, (await r.text()).split('\\n')[0]];")
    assert head[0] == 200 and "warden-ledger-export/1" in head[1], head

    d.find_element(By.ID, "verify-file").send_keys(str(good))
    d.find_element(By.ID, "verify-export").click()
    wait_for(d, "the export verified", lambda d: "verified" in d.find_element(By.ID, "verify-result").text)
    shot(d, "10-export-verified", d.find_element(By.ID, "verify-result"))

    d.find_element(By.ID, "verify-file").send_keys(str(bad))
    d.find_element(By.ID, "verify-export").click()
    wait_for(d, "the tampered export refused", lambda d: "failed" in d.find_element(By.ID, "verify-result").text)
    text = d.find_element(By.ID, "verify-result").text
    assert f"entry {tampered_index}" in text, text
    shot(d, "11-tampered-export-refused", d.find_element(By.ID, "verify-result"))

    box = d.find_element(By.ID, "verify-receipt")
    box.send_keys(json.dumps(receipt))
    d.find_element(By.ID, "verify-receipt-button").click()
    wait_for(d, "the receipt verified", lambda d: "verified" in d.find_element(By.ID, "verify-result").text)
    # A receipt for another entry's bytes does not verify.
    forged = json.loads(json.dumps(receipt))
    forged["receipt"]["entry_hash"] = "00" * 32
    box.clear()
    box.send_keys(json.dumps(forged))
    d.find_element(By.ID, "verify-receipt-button").click()
    wait_for(d, "the forged receipt refused", lambda d: "failed" in d.find_element(By.ID, "verify-result").text)


class Receiver:
    """A webhook receiver on loopback that refuses (400) what it is told to,
    as a SIEM refuses an event it cannot take."""

    def __init__(self) -> None:
        self.refuse = True
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                event = json.loads(body)
                poison = "poison" in json.dumps(event)
                if poison and outer.refuse:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b"cannot take this event")
                    return
                outer.received.append(event)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_sinks_show_lag_errors_and_dead_letters_and_an_admin_redrives(
    tmp_path: Path, browsers: Callable[[], WebDriver]
) -> None:
    server = WardenServer(
        bin=binary(),
        data_dir=tmp_path / "data",
        settings={"WARDEN_TENANT_SINKS__ALLOW_NETWORKS": '["127.0.0.0/8"]'},
    ).start()
    receiver = Receiver()
    try:
        url = server.url
        with warden.Client(url, server.token) as admin:
            auth = {"Authorization": f"Bearer {server.token}"}
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
            r = httpx.put(f"{url}/v1/sinks/siem", json={"type": "webhook", "url": receiver.url, "secrets": [secret]}, headers=auth)
            assert r.status_code == 201, r.text
            admin.audit_batch(
                [
                    {"timestamp": "2026-12-06T00:00:01Z", "action": "tool.invoke", "result": "allowed"},
                    {"timestamp": "2026-12-06T00:00:02Z", "action": "tool.poison", "result": "allowed"},
                    {"timestamp": "2026-12-06T00:00:03Z", "action": "tool.invoke", "result": "denied"},
                ]
            )
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                view = next(s for s in httpx.get(f"{url}/v1/sinks", headers=auth).json() if s["name"] == "siem")
                if view["dead_letters"] == 1 and view["lag"] == 0:
                    break
                time.sleep(0.2)
            assert view["dead_letters"] == 1 and view["lag"] == 0, view
            auditor = admin.create_token("sink-auditor", ["auditor"])

            # The auditor reads the sink: lag, last error, the dead letter
            # and why; no redrive button.
            d = browsers()
            sign_in(d, url, auditor["token"])
            open_section(d, "sinks")
            card = wait_for(d, "the sink", lambda d: d.find_element(By.CSS_SELECTOR, 'article.sink[data-sink="siem"]'))
            assert card.find_element(By.CSS_SELECTOR, ".lag").text == "0 entries"
            assert "400" in card.find_element(By.CSS_SELECTOR, ".last-error").text
            assert card.find_element(By.CSS_SELECTOR, ".dead-count").text == "1"
            assert card.find_elements(By.CSS_SELECTOR, "button.redrive") == []
            card.find_element(By.XPATH, ".//button[text()='Show dead letters']").click()
            row = wait_for(d, "the dead letter", lambda d: d.find_element(By.CSS_SELECTOR, 'article.sink[data-sink="siem"] .dead-letters tbody tr'))
            assert "400" in row.text, row.text
            shot(d, "13-sink-dead-letter", card)

            # The receiver is fixed; the admin redrives from the page.
            receiver.refuse = False
            a = browsers()
            sign_in(a, url, server.token)
            open_section(a, "sinks")
            wait_for(a, "the redrive button", lambda d: d.find_element(By.CSS_SELECTOR, 'article.sink[data-sink="siem"] button.redrive')).click()
            wait_for(a, "the redrive's answer", lambda d: "1 delivered, 0 still refused" in d.find_element(By.ID, "toast").text)
            wait_for(a, "no dead letter left", lambda d: d.find_element(By.CSS_SELECTOR, 'article.sink[data-sink="siem"] .dead-count').text == "0")
            assert any("poison" in json.dumps(e) for e in receiver.received)
    finally:
        receiver.close()
        server.stop()


def test_a_run_graph_marks_retries_and_caught_errors(
    warden_server: WardenServer, admin: warden.Client, browsers: Callable[[], WebDriver]
) -> None:
    url = warden_server.url
    suffix = secrets.token_hex(3)
    name = f"flaky-{suffix}"
    agent_id = f"fetcher-{suffix}"
    flow = {
        "apiVersion": "agentrc.workflow/v0.1",
        "kind": "AgentWorkflow",
        "metadata": {"name": name},
        "spec": {
            "startAt": "Fetch",
            "states": {
                "Fetch": {
                    "type": "Task",
                    "agent": agent_id,
                    "retry": [{"errorEquals": ["Tool.TemporaryFailure"], "intervalSeconds": 1, "maxAttempts": 1}],
                    "catch": [{"errorEquals": ["States.ALL"], "resultPath": "$.error", "next": "Escalate"}],
                    "next": "Done",
                },
                "Escalate": {"type": "Pass", "result": "escalated", "resultPath": "$.outcome", "end": True},
                "Done": {"type": "Succeed"},
            },
        },
    }
    auth = {"Authorization": f"Bearer {warden_server.token}"}
    agent = mint(admin, url, agent_id, ["agent"], agent_ids=[agent_id])
    reader = StreamReader(agent.agent_stream(agent_id).open())
    try:
        run_id = start_run(url, warden_server.token, flow, {"url": "u"})
        # The task fails, is retried once, fails again: the error is caught.
        for _ in range(2):
            exe = reader.next("execution.assigned").json()["execution_id"]
            agent.intent(exe, "fail", error={"error": "Tool.TemporaryFailure", "cause": "flaky upstream"})
        deadline = time.monotonic() + WAIT
        while httpx.get(f"{url}/v1/workflow-runs/{run_id}", headers=auth).json()["status"] != "succeeded":
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.1)
    finally:
        reader.close()
        agent.close()

    auditor = admin.create_token(f"auditor-flaky-{suffix}", ["auditor"])
    d = browsers()
    sign_in(d, url, auditor["token"])
    d.get(f"{url}/ui#/runs/{run_id}")
    graph = wait_for(d, "the state graph", lambda d: d.find_element(By.CSS_SELECTOR, "svg.graph"))
    fetch = graph.find_element(By.CSS_SELECTOR, 'g.state[data-state="Fetch"]')
    marks = fetch.find_element(By.CSS_SELECTOR, "text.kind").text
    assert "retried 1×" in marks and "error caught" in marks, marks
    assert "unvisited" not in graph.find_element(By.CSS_SELECTOR, 'g.state[data-state="Escalate"]').get_attribute("class")
    assert "unvisited" in graph.find_element(By.CSS_SELECTOR, 'g.state[data-state="Done"]').get_attribute("class")
    shot(d, "14-run-retried-and-caught")
