"""``edgechat serve`` in a real browser: headless Chromium, driven by Selenium through chromedriver.

The page is opened with the access key (``--allow-remote`` on 127.0.0.1, so the key, the redirect
and the cookie are all on the way), the chat screen is waited for, a message is typed and sent
with Enter, the reply from the loopback Workers AI stand-in is waited for on the page, the page is
reloaded (a new app process, the cookie carrying the key) and the conversation is waited for again.

What the page shows is read from the terminal the page draws: xterm.js paints on a canvas, so a
script added before the page loads (test-only, through the DevTools protocol) keeps a reference to
the page's terminal object, and the test reads the lines of its buffer, which are what is drawn.
Every wait polls a condition; none sleeps a fixed time. Screenshots: tests/artifacts/.

Skipped, with the reason, where Debian's chromium and chromium-driver are not installed (the
README's test command installs them); under CI=true a missing browser is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.fakes.workers_ai import Reply
from tests.serve.harness import ROOT, ServeProcess, alive, serve_env

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None)
ARTIFACTS = ROOT / "tests" / "artifacts"
REPLY = "Bonjour from the loopback Workers AI stand-in"
MESSAGE = "Hello from Chromium"

if not (CHROMIUM and CHROMEDRIVER):
    reason = ("the browser test needs Debian's chromium and chromium-driver "
              "(apt-get install chromium chromium-driver; the README's test command installs them)")
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser test, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

# Added to every page before its own scripts: remembers each xterm.js Terminal the page makes (the
# public Terminal object is the one that sets ``_core`` and has ``loadAddon``).
KEEP_TERMINAL = """
window.__terminals = [];
Object.defineProperty(Object.prototype, "_core", {
  configurable: true,
  get() { return undefined; },
  set(value) {
    Object.defineProperty(this, "_core", {value, writable: true, configurable: true, enumerable: true});
    if (typeof this.loadAddon === "function") window.__terminals.push(this);
  },
});
"""
SCREEN_TEXT = """
const t = window.__terminals && window.__terminals[window.__terminals.length - 1];
if (!t) return null;
const b = t.buffer.active, lines = [];
for (let i = 0; i < t.rows; i++) {
  const line = b.getLine(b.viewportY + i);
  lines.push(line ? line.translateToString(true) : "");
}
return lines.join("\\n");
"""


def chromium(user_data_dir: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
                 "--window-size=1280,800", f"--user-data-dir={user_data_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Both paths given: Selenium never runs its manager, which would try to download a driver.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait_for(driver: webdriver.Chrome, predicate, what: str, timeout: float = 30.0) -> str:
    """Poll the page's screen text until ``predicate(text)``; fail with what the page showed."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = driver.execute_script(SCREEN_TEXT) or ""
        if predicate(text):
            return text
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; the page showed:\n{text}")


@pytest.fixture
def fake():
    from tests.fakes.workers_ai import FakeWorkersAI

    with FakeWorkersAI() as server:
        yield server


def test_chat_in_headless_chromium(tmp_path, fake):
    started = time.monotonic()
    fake.enqueue(Reply(REPLY, chunk_size=6, delay=0.02))
    serve = ServeProcess(serve_env(tmp_path, fake), "--user", "alice", "--host", "127.0.0.1",
                         "--allow-remote")
    driver = None
    try:
        assert "?key=" in serve.url
        driver = chromium(tmp_path / "chromium-profile")
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": KEEP_TERMINAL})
        driver.get(serve.url)
        # The key went into a cookie and out of the address bar.
        assert driver.current_url == f"{serve.base}/", driver.current_url

        screen = wait_for(driver, lambda t: "Message edgechat" in t and "ready" in t, "the chat screen")
        assert "alice" in screen and "local" in screen
        input_box = driver.find_element("css selector", ".xterm-helper-textarea")
        assert driver.switch_to.active_element == input_box  # the page gave the chat the keyboard
        input_box.send_keys(MESSAGE)
        wait_for(driver, lambda t: MESSAGE in t, "the typed message in the input")
        input_box.send_keys(Keys.ENTER)
        screen = wait_for(driver, lambda t: REPLY in t and "ready" in t and "Stop reply" not in t,
                          "the reply")
        # In the conversation, no longer in the input (the header's first line shows it too, as the
        # conversation's title: its first words).
        body = screen.split("\n", 1)[-1] if "\n" in screen else screen.replace(MESSAGE, "", 1)
        assert body.count(MESSAGE) == 1
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "serve-browser.png"))
        print(f"screenshot: {ARTIFACTS / 'serve-browser.png'}")
        first_pids = serve.children()
        assert len(first_pids) == 1

        driver.refresh()
        screen = wait_for(driver, lambda t: REPLY in t and MESSAGE in t and "ready" in t,
                          "the conversation after the reload")
        driver.save_screenshot(str(ARTIFACTS / "serve-browser-reloaded.png"))
        # A new app process for the new page; the old one was stopped when its page went away.
        serve.wait_for(lambda: len(serve.children()) == 1 and serve.children() != first_pids,
                       what="the old app process to be replaced by the new one")
        assert not alive(first_pids[0])

        # Nothing came from anywhere but this server: no CDN, no web font from elsewhere.
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert resources and all(url.startswith(serve.base + "/") for url in resources), resources
        assert driver.execute_script("return document.fonts.check('16px \"Roboto Mono\"')")
        complaints = [entry["message"] for entry in driver.get_log("browser")
                      if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]]
        assert not complaints, complaints
        assert fake.run_requests and fake.run_requests[-1].body["messages"][-1]["content"] == MESSAGE
    finally:
        if driver is not None:
            driver.quit()
        status = serve.stop(signal.SIGINT)
        print(f"browser test: {time.monotonic() - started:.1f} s")
    assert status == 0, serve.stderr_text()
    assert not serve.children()
