"""The served dashboard asks no other host for anything: every request Chromium makes while the page loads, draws
the map, fills the verdict and opens Compare goes to the server on 127.0.0.1 (no font server for the page icon,
no CDN).  The icon itself is served by the dashboard."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

import test_browser
from test_browser import chromium_page, painted

served_app = test_browser.served_app        # the same fixtures: one server for this module
runs_folder = test_browser.runs_folder

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LOCAL = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _outside(urls: list[str]) -> list[str]:
    """The requests that leave this machine (data: and blob: URLs never reach a network)."""
    return [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")
            and urlsplit(u).hostname not in LOCAL]


def test_no_request_leaves_localhost(served_app, tmp_path):
    url, _, label = served_app
    with chromium_page("about:blank", tmp_path) as page:
        seen: list[str] = []
        page.on("request", lambda r: seen.append(r.url))
        page.on("websocket", lambda ws: seen.append(ws.url))
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg', timeout=120_000)
        # the verdict (the analysis in the background) and the whole Explore page are drawn
        page.locator(".st-key-verdicts").get_by_text(re.compile(rf"{re.escape(label)}.*claim")).first.wait_for(
            timeout=240_000)
        icon = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
        assert icon and all(urlsplit(h).hostname in LOCAL for h in icon), icon
        page.goto(url + "/?section=Compare", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Compare").wait_for(timeout=120_000)
        painted(page)
        assert page.locator('[data-testid="stException"]').count() == 0
    assert seen, "no request was recorded"
    assert any(urlsplit(u).hostname in LOCAL for u in seen)
    assert not _outside(seen), f"requests to other hosts: {sorted(set(_outside(seen)))}"


def test_the_filter_finds_an_outside_request():
    assert _outside(["https://fonts.gstatic.com/s/i/x.svg", "http://127.0.0.1:8501/_stcore/health",
                     "data:image/png;base64,xx", "ws://localhost:8501/_stcore/stream"]) == \
        ["https://fonts.gstatic.com/s/i/x.svg"]
