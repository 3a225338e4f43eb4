"""The HTML site of a real export in a real headless Chromium (Debian's `chromium`, via Playwright).

Opened over file:// as a user would: the index loads, a link navigates to a page that renders its
title, styles apply, and there are no console or page errors. The network is closed: requests
leaving file:// are answered by a stub, and only media (remote images) may ask for them; the
stylesheet, fonts and scripts never leave the folder. With UPDATE_SCREENSHOT=1 the screenshot
replaces docs/screenshots/html-export.png.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from notion_sync.emulator.process import EmulatorProcess
from notion_sync.render import render_snapshot
from tests.test_render import exported

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "screenshots" / "html-export.png"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# 1x1 transparent GIF: what the stub answers for remote images
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)

# CI installs both (.ci/run): there a missing browser is a failure, not a skip.
_OPTIONAL = not os.environ.get("CI")
pytestmark = [
    pytest.mark.skipif(
        _OPTIONAL and not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"
    ),
    pytest.mark.skipif(
        _OPTIONAL and importlib.util.find_spec("playwright") is None,
        reason="needs playwright: pip install playwright",
    ),
]

__all__ = ["exported"]  # the module-scoped export fixture, shared with test_render


async def test_site_opens_navigates_and_has_no_console_errors(
    exported: tuple[Path, EmulatorProcess], tmp_path: Path
) -> None:
    from playwright.async_api import Request, Route, async_playwright

    snapshot, _ = exported
    render_snapshot(snapshot, ("html",), tmp_path / "site")
    # downloaded files live beside the Markdown: the site refers to them in the snapshot
    index = (tmp_path / "site" / "html" / "index.html").as_uri()
    errors: list[str] = []
    outside: list[tuple[str, str]] = []

    async def stub(route: Route, request: Request) -> None:
        if request.url.startswith("file://"):
            await route.continue_()
            return
        outside.append((request.resource_type, request.url))
        await route.fulfill(status=200, content_type="image/gif", body=PIXEL)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 1300})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.route("**/*", stub)

            await page.goto(index, wait_until="load", timeout=30_000)
            assert await page.title() == "Notion export"
            assert await page.locator("ul.tree > li").count() >= 5

            page.set_default_timeout(15_000)
            await page.locator("ul.tree a", has_text="Showcase: every block type").first.click()
            await page.wait_for_load_state("load")
            assert page.url.endswith("/Showcase_%20every%20block%20type.html")
            assert "Showcase: every block type" in await page.locator("h1.title").inner_text()
            # the stylesheet applied: columns sit side by side, toggles are <details>
            columns = page.locator("div.columns").first
            assert await columns.evaluate("e => getComputedStyle(e).display") == "flex"
            assert await page.locator("details").count() >= 1
            await page.wait_for_load_state("networkidle", timeout=10_000)
            shot = tmp_path / "html-export.png"
            await page.locator("aside.callout").first.evaluate("e => e.scrollIntoView()")
            await page.screenshot(path=str(shot))

            await page.locator("nav.crumbs a", has_text="Workspace").click()
            await page.wait_for_load_state("load")
            assert page.url == index
        finally:
            await browser.close()

    assert errors == []
    assert {kind for kind, _ in outside} <= {"image", "media"}, outside
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
