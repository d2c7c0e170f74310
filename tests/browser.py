"""Test helpers for HTML reports: a headless Chromium screenshot, and the page's external references.

    from browser import needs_chromium, screenshot, external_references

Chromium runs with the network kept away (every host name resolves to nothing, no proxy, no
background services) in a throwaway profile, so a test that passes did not fetch anything.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    """The first Chromium-family browser on PATH, or None."""
    for name in _BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


needs_chromium = pytest.mark.skipif(
    chromium_path() is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")


def screenshot(html_path: str | os.PathLike, png_path: str | os.PathLike, width: int = 1200,
               height: int = 900, timeout: float = 120) -> Path:
    """Render a local HTML file in headless Chromium and save a width×height PNG of the window."""
    browser = chromium_path()
    if browser is None:
        raise RuntimeError("headless Chromium is not installed")
    html_path, png_path = Path(html_path).resolve(), Path(png_path).resolve()
    png_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="gatys-chromium-") as profile:
        command = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
            # Off the network: no name resolves, no proxy is tried, no background fetches.
            "--host-resolver-rules=MAP * ~NOTFOUND", "--no-proxy-server",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-default-apps", "--disable-breakpad",
            "--metrics-recording-only", "--mute-audio",
            f"--window-size={width},{height}", f"--screenshot={png_path}", html_path.as_uri(),
        ]
        environment = {**os.environ, "HOME": profile}  # keep Chromium's caches off the real home
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                   env=environment)
    if not png_path.exists():
        raise RuntimeError(f"Chromium wrote no screenshot (exit {completed.returncode}):\n"
                           f"{completed.stderr[-3000:]}")
    return png_path


# Attributes that hold a URL the browser may fetch or navigate to.
_URL_ATTRIBUTES = {"src", "href", "poster", "data", "action", "formaction", "background",
                   "cite", "longdesc", "manifest", "icon", "xlink:href", "ping"}
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)|@import\s+(['"])(.*?)\3""", re.IGNORECASE)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name in _URL_ATTRIBUTES:
                self.urls.append(value)
            elif name in ("srcset", "imagesrcset"):
                self.urls.extend(part.split()[0] for part in value.split(",") if part.strip())
            elif name == "style":
                self._css(value)
            elif name == "content" and dict(attrs).get("http-equiv", "").lower() == "refresh":
                target = re.search(r"url\s*=\s*(.+)", value, re.IGNORECASE)
                if target:
                    self.urls.append(target.group(1).strip("'\" "))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self._css(data)

    def _css(self, text: str) -> None:
        for match in _CSS_URL.finditer(text):
            self.urls.append(match.group(2) if match.group(2) is not None else match.group(4))


def external_references(html_text: str) -> list[str]:
    """Every URL in the page (src, href, srcset, url(...) and @import in CSS, ...) that is neither
    relative nor a data: URI: anything with a scheme (https:, file:, javascript:) or a host (//x)."""
    parser = _References()
    parser.feed(html_text)
    parser.close()
    external = []
    for url in parser.urls:
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() == "data":
            continue
        if parts.scheme or parts.netloc or url.startswith(("//", "\\\\")):
            external.append(url)
    return external
