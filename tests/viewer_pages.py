"""Helpers for the viewer tests: build viewer pages, read their parts back, drive Chromium.

The payload is read back by parsing the page with the standard library's
HTML parser and the JSON block with ``json``; the browser tests drive
Debian's ``chromium`` through Playwright with the system browser (``playwright
install`` cannot download here).
"""

from __future__ import annotations

import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Page", "parse_page", "CHROMIUM", "CHROMIUM_ARGS", "browser_or_skip", "HOSTILE"]

#: Where Debian's package puts the browser, and the flags that keep it off the network.
CHROMIUM = os.environ.get("GRADVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run",
                 "--disable-component-update", "--disable-sync"]

#: Labels from a stranger's snapshot that must stay text.
HOSTILE = [
    "</script><script>window.__pwned = 1</script>",
    "<img src=x onerror=\"window.__pwned = 2\">",
    "javascript:window.__pwned = 3",
    "<!-- <script>",
    "abc\u202edcba",  # a right-to-left override
    "w" * 10_000,
    "中文 | { } < > \" \\ :",
]


class Page(HTMLParser):
    """The tags of a page, its meta CSP, its script and style texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[int, str] = {}
        self._open: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = len(self.tags) - 1

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:  # the text directly inside the last element opened
            self.texts[self._open] = self.texts.get(self._open, "") + data

    def text_of(self, tag: str, **attrs: str) -> list[str]:
        return [self.texts.get(i, "") for i, (t, a) in enumerate(self.tags) if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    @property
    def csp(self) -> str:
        metas = [a.get("content") or "" for t, a in self.tags if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"]
        assert len(metas) == 1
        return metas[0]

    @property
    def payload(self) -> dict[str, Any]:
        (blob,) = self.text_of("script", type="application/json", id="gradviz-data")
        return json.loads(blob)


def parse_page(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def browser_or_skip():
    """A launched Chromium, or skip (fail under CI=true, where .ci/run installs it)."""
    in_ci = os.environ.get("CI") == "true"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if in_ci:
            pytest.fail("playwright is not installed (pip install playwright)")
        pytest.skip("playwright is not installed: pip install playwright")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if in_ci:
            pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set GRADVIZ_CHROMIUM)")
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as exc:  # Playwright raises its own Error type for a browser that will not start
        manager.stop()
        if in_ci:
            raise
        pytest.skip(f"Chromium at {CHROMIUM} does not start: {str(exc).splitlines()[0]}")
    return manager, browser
