"""Headless Chromium for the console's browser tests: Debian's chromium,
driven through its chromedriver (or CHROMIUM and CHROMEDRIVER). A missing
browser fails the tests, never skips them."""

from __future__ import annotations

import os
import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver


def open_chromium(*, script_timeout: float, window_size: str | None = None) -> WebDriver:
    """A new headless browser with a profile of its own (so cookies of its own)."""
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail(
            "the console tests need Chromium and its driver: apt-get install chromium chromium-driver "
            "(or set CHROMIUM and CHROMEDRIVER)",
            pytrace=False,
        )
    opts = Options()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    if window_size:
        opts.add_argument(f"--window-size={window_size}")
    d = webdriver.Chrome(service=Service(driver), options=opts)
    d.set_script_timeout(script_timeout)
    return d
