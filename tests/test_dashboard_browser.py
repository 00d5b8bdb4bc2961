"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright), in front of a real
``podium serve`` whose upstream is an OpenAI-wire server (``tests/servers``), with traffic sent by the
official ``openai`` SDK.

Every page loads with no console error, its charts draw, the time range changes the numbers, the
request explorer finds a request just made through the gateway and shows its trace, and the pages are
usable by keyboard. Screenshots go to ``test-output/dashboard/``; with ``PODIUM_UPDATE_DOCS=1`` the
overview's also becomes the README's ``docs/dashboard-overview.png``. Without a browser the tests skip
and say why, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from drop_in import UPSTREAM_KEY, free_port, upstream_handler
from servers.http_server import WireServer

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "test-output" / "dashboard"
ADMIN = "admin-browser-secret-0123456789"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGES = {"": "Overview", "models": "Models & deployments", "task-types": "Task types", "routing": "Routing",
         "keys": "Keys & teams", "requests": "Request explorer"}
HISTORY_DAYS = 6  # older requests written straight into the ledger, so the ranges differ


def _require_browser() -> None:
    missing = None
    if CHROMIUM is None:
        missing = "no chromium on this machine (apt-get install chromium chromium-driver)"
    elif importlib.util.find_spec("playwright") is None:
        missing = "playwright is not installed (pip install -e '.[dev]')"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {missing}")
        pytest.skip(missing)


@dataclass
class Served:
    url: str
    ledger: Path
    made: dict[str, str]
    history: int
    recent: int


def _config(directory: Path, upstream: WireServer) -> Path:
    models = {name: {"provider": "up", "model_id": model_id, "context_window": 128000, "max_output_tokens": 4096,
                     "input_price": price, "output_price": price * 4, "tier": tier, "region": "us",
                     "capabilities": ["chat"]}
              for name, model_id, price, tier in (("fast-model", "gpt-4o-mini", 0.15, "fast"),
                                                  ("smart-model", "gpt-4.1-mini", 2.5, "advanced"))}
    config = {
        "providers": {"up": {"kind": "openai", "base_url": upstream.url + "/v1", "api_key": UPSTREAM_KEY},
                      "local": {"enabled": False}},
        "models": models,
        "routing": {"default": "fast-model", "rules": [{"task_type": "planning", "model": "smart-model"}]},
        "strategies": {"panel": {"type": "consensus", "models": ["fast-model", "smart-model", "fast-model"]}},
        "resilience": {"retries": {"max_attempts": 1}},
        "gateway": {"admin_key": ADMIN, "keys_path": str(directory / "keys.sqlite3"),
                    "teams": {"research": {"budget": 50.0}}},
        "ledger": {"path": str(directory / "ledger.sqlite3")},
        "dashboard": {"refresh_seconds": 0},
    }
    path = directory / "podium.yaml"
    path.write_text(json.dumps(config))
    return path


def _history(ledger: Path, now: float) -> int:
    """Older requests, as the gateway would have written them, spread over the last days."""
    rng = random.Random(5)
    count = 0
    with sqlite3.connect(ledger) as conn:
        for i in range(240):
            started = now - 3600 * 2 - (HISTORY_DAYS * 86400 - 7200) * i / 240
            model, price = rng.choice((("fast-model", 0.15), ("smart-model", 2.5)))
            tokens_in, tokens_out = rng.randint(50, 900), rng.randint(20, 400)
            cost = (tokens_in * price + tokens_out * price * 4) / 1e6
            latency = rng.lognormvariate(5.5, 0.5)
            status = "error" if rng.random() < 0.05 else "ok"
            request_id = f"req_hist{i:020d}"
            conn.execute("INSERT INTO requests (request_id, started_at, finished_at, requested_model, model,"
                         " provider, task_type, strategy, user_id, tags, status, input_tokens, output_tokens, cost,"
                         " latency_ms, calls, fallbacks, retries) VALUES (?, ?, ?, ?, ?, 'up', ?, 'single', ?, '', ?,"
                         " ?, ?, ?, ?, 1, ?, 0)",
                         (request_id, started, started + latency / 1000, None, model,
                          rng.choice(("qa", "code", "planning", "summary")), f"user-{i % 7}", status, tokens_in,
                          tokens_out, cost, latency, 1 if rng.random() < 0.03 else 0))
            conn.execute("INSERT INTO calls (request_id, seq, started_at, provider, model, status, input_tokens,"
                         " output_tokens, cost, latency_ms, error) VALUES (?, 1, ?, 'up', ?, ?, ?, ?, ?, ?, ?)",
                         (request_id, started, model, status, tokens_in, tokens_out, cost, latency,
                          "upstream timed out" if status == "error" else None))
            count += 1
    return count


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    _require_browser()
    directory = tmp_path_factory.mktemp("dashboard-browser")
    upstream = WireServer(upstream_handler("openai")).start()
    config = _config(directory, upstream)
    port = free_port()
    log = directory / "gateway.log"
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and k != "PODIUM_CONFIG"}
    process = subprocess.Popen([sys.executable, "-m", "podium.cli", "serve", "--port", str(port), "--config",
                                str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=directory, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podium serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        made = _traffic(url)
        history = _history(directory / "ledger.sqlite3", time.time())
        yield Served(url, directory / "ledger.sqlite3", made, history, int(made["count"]))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        upstream.stop()


def _traffic(url: str) -> dict[str, str]:
    """What a user does: a key for the team, requests with the openai SDK, one streamed, one failing, feedback."""
    created = httpx.post(f"{url}/admin/keys", json={"name": "research-app", "team": "research", "budget": 20.0},
                         headers={"authorization": f"Bearer {ADMIN}"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)
    made: dict[str, str] = {"key_id": created.json()["id"], "secret": key}
    count = 0
    for i, (model, task) in enumerate((("fast-model", "qa"), ("fast-model", "code"), (None, "planning"),
                                       ("panel", "review"), ("smart-model", "qa"))):
        raw = client.chat.completions.with_raw_response.create(
            model=model or "auto", messages=[{"role": "user", "content": f"Question number {i}, briefly"}],
            metadata={"task_type": task, "tags": "area:dashboard"}, user=f"sdk-user-{i}")
        assert raw.status_code == 200
        made[f"request_{i}"] = raw.headers["x-request-id"]
        count += 1
    stream = client.chat.completions.create(model="fast-model", stream=True, messages=[
        {"role": "user", "content": "Stream a short answer"}])
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    count += 1
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="fast-model", messages=[{"role": "user", "content": "[[error:server]]"}])
    count += 1
    feedback = httpx.post(f"{url}/v1/feedback", json={"request_id": made["request_0"], "score": 0.8},
                          headers={"authorization": f"Bearer {key}"})
    assert feedback.status_code == 200, feedback.text
    made["count"] = str(count)
    return made


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


class Page:
    """One tab, recording every console error and uncaught exception."""

    def __init__(self, browser: Any, served: Served) -> None:
        self.page = browser.new_page(viewport={"width": 1360, "height": 1000}, color_scheme="light")
        self.served = served
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, slug: str, **params: str) -> Any:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        self.page.goto(f"{self.served.url}/dashboard/{slug}{'?' + query if query else ''}")
        self.settled()
        if self.page.locator("#login").is_visible():  # once per tab: the key stays in its session storage
            self.page.fill("#key", ADMIN)
            self.page.keyboard.press("Enter")
            self.settled(r"^(Updated|Failed)")  # not the "A key is needed" still showing
        return self.page

    def settled(self, status: str = r"^(Updated|Failed|A key)") -> None:
        from playwright.sync_api import expect

        # (no wait_for_function: it evaluates strings, which the pages' CSP rightly refuses)
        expect(self.page.locator("#status")).to_have_text(re.compile(status))
        expect(self.page.locator("#content")).to_have_attribute("aria-busy", "false")

    def metric(self, name: str) -> str:
        return str(self.page.locator(f'[data-metric="{name}"] dd').inner_text())

    def shot(self, name: str) -> Path:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def test_every_page_loads_without_console_errors_and_draws_its_charts(browser: Any, served: Served):
    tab = Page(browser, served)
    for slug, title in PAGES.items():
        page = tab.open(slug, range="7d")
        tab.shot(slug or "overview")
        assert page.locator("h1").inner_text() == title
        assert not page.locator(".error").count(), page.locator(".error").all_inner_texts()
        assert page.locator("dl.cards" if slug == "" else "table").count() >= 1, slug
    assert tab.errors == []
    page = tab.open("", range="7d")
    for chart in ("chart-requests", "chart-spend", "chart-rates"):
        assert page.locator(f"svg#{chart} path.series").count() >= 1, chart
        box = page.locator(f"svg#{chart}").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 80
    page = tab.open("models", range="7d")
    assert page.locator("svg#chart-latency rect.bar").count() >= 2
    widths = [float(w) for w in page.locator("svg#chart-latency rect.bar").evaluate_all(
        "bars => bars.map(b => b.getAttribute('width'))")]
    assert max(widths) > 0
    assert "fast-model" in page.locator("table").first.inner_text()
    cells = page.locator("table", has_text="Deployments (model on a provider)").evaluate(
        """table => { const heads = [...table.querySelectorAll("th")].map(h => h.textContent);
                      const row = [...table.querySelectorAll("tbody tr")].find(
                        r => r.cells[0].textContent === "fast-model" && r.cells[1].textContent === "up");
                      return Object.fromEntries(heads.map((h, i) => [h, row.cells[i].textContent])); }""")
    # the traffic's streamed request has a time to first token; the history written without one does not count
    assert all(any(c.isdigit() for c in cells[name]) for name in ("TTFT p50", "TTFT p95")), cells
    assert int(cells["streamed"]) >= 1, cells
    live = page.locator("table", has_text="Deployments now").inner_text()
    assert "fast-model@up" in live and "closed (healthy)" in live  # the running gateway's own circuits
    assert tab.errors == []


def test_the_time_range_changes_the_numbers(browser: Any, served: Served):
    tab = Page(browser, served)
    page = tab.open("", range="24h")
    day = int(tab.metric("requests").replace(",", ""))
    with sqlite3.connect(served.ledger) as conn:
        expected = conn.execute("SELECT COUNT(*) FROM requests WHERE started_at >= ?", (time.time() - 86400,)
                                ).fetchone()[0]
    assert day == expected and served.recent <= day < served.recent + served.history
    page.select_option("#range", "7d")
    tab.settled()
    week = int(tab.metric("requests").replace(",", ""))
    assert week == served.recent + served.history
    assert week > day
    assert "range=7d" in page.url
    assert tab.metric("cost") != "$0"
    page.evaluate("document.activeElement.blur()")  # no focus ring in the picture
    path = tab.shot("overview-7d")
    if os.environ.get("PODIUM_UPDATE_DOCS") == "1":
        shutil.copyfile(path, ROOT / "docs" / "dashboard-overview.png")
    # the range is kept when moving to another page
    page.locator("nav a", has_text="Task types").click()
    tab.settled()
    assert "range=7d" in page.url and page.locator("#range").input_value() == "7d"
    assert tab.errors == []


def test_the_request_explorer_finds_a_request_just_made_through_the_gateway(browser: Any, served: Served):
    tab = Page(browser, served)
    request_id = served.made["request_3"]  # the consensus panel: a tree with several calls
    page = tab.open("requests", range="1h")
    page.fill("input[name=id]", f"chatcmpl-{request_id}")
    page.keyboard.press("Enter")
    tab.settled()
    assert page.locator(f"a[data-id='{request_id}']").count() == 1
    assert page.locator("#request-detail").is_visible()
    tree = page.locator("#trace-tree").inner_text()
    assert "panel" in tree and "fast-model" in tree and "smart-model" in tree
    assert page.locator("#trace-tree li").count() >= 4
    tab.shot("request-detail")
    page = tab.open("requests", range="1h", user="sdk-user-0")
    assert page.locator(f"a[data-id='{served.made['request_0']}']").count() == 1
    page.locator(f"a[data-id='{served.made['request_0']}']").click()
    tab.settled()
    assert "0.8" in page.locator("#request-detail").inner_text()  # its feedback
    # a week holds more than a page: older requests page by page, newest first
    page = tab.open("requests", range="7d")
    first = page.locator("a[data-id]").all_inner_texts()
    assert len(first) == 50
    page.locator("#older").click()
    tab.settled()
    second = page.locator("a[data-id]").all_inner_texts()
    assert len(second) == 50 and not set(first) & set(second)
    assert tab.errors == []


def test_usable_by_keyboard_and_shows_no_key_or_prompt(browser: Any, served: Served):
    from playwright.sync_api import expect

    tab = Page(browser, served)
    page = tab.open("", range="7d")
    expect(page.locator("#main")).to_be_focused()  # after the key form, focus is on the content
    page.reload()  # the key stays in the tab's session storage: no form this time
    tab.settled()
    assert not page.locator("#login").is_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    seen = []
    for _ in range(12):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.id || document.activeElement.textContent"))
    assert "Models & deployments" in seen and "range" in seen and "reload" in seen
    page.focus("nav a >> text=Routing")
    page.keyboard.press("Enter")
    tab.settled()
    assert page.locator("h1").inner_text() == "Routing"
    for slug in PAGES:
        text = tab.open(slug, range="7d").content()
        assert ADMIN not in text and served.made["secret"] not in text and served.made["secret"][:7] not in text
        assert "Question number" not in text and "Stream a short answer" not in text
    assert tab.errors == []


def test_bad_urls_fall_back_and_a_search_keeps_focus_and_a_phone_sees_no_overflow(browser: Any, served: Served):
    """The review's findings: ?range=bogus, ?show=<missing>, focus after a search, 390 px wide charts."""
    from playwright.sync_api import expect

    tab = Page(browser, served)
    page = tab.open("", range="bogus")
    assert page.locator("#range").input_value() == "24h" and "range=24h" in page.url
    page = tab.open("requests", range="7d", show="nope")
    assert page.locator("#results").count() == 1 and "Request nope" in page.locator("#request-detail").inner_text()
    assert all("404" in error for error in tab.errors)  # the browser's own note of the answer, nothing else
    tab.errors.clear()
    page.fill("input[name=status]", "ok")
    page.press("input[name=status]", "Enter")
    expect(page.locator("#results")).to_be_focused()
    page.set_viewport_size({"width": 390, "height": 844})
    for slug in ("", "models"):
        page = tab.open(slug, range="7d")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert tab.errors == []


def test_auto_refresh_shows_a_request_made_after_the_page_opened(browser: Any, served: Served):
    """Last in this file: it adds a request the counts above do not expect."""
    from playwright.sync_api import expect

    tab = Page(browser, served)
    for flood in ("0.001", "-5", "1e3"):  # not whole seconds: the page's default, never a flood of requests
        page = tab.open("", range="1h", refresh=flood)
        assert page.locator("#refresh").input_value() == page.locator("body").get_attribute("data-refresh")
    page = tab.open("", range="1h", refresh="1")
    assert page.locator("#refresh").input_value() == "5"  # at least 5 s between loads
    before = int(tab.metric("requests").replace(",", ""))
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key=served.made["secret"], max_retries=0, timeout=30)
    client.chat.completions.create(model="fast-model", messages=[{"role": "user", "content": "One more"}])
    expect(page.locator('[data-metric="requests"] dd')).to_have_text(f"{before + 1:,}", timeout=10_000)
    assert tab.errors == []
