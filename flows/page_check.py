"""Load a local HTML page in headless Chromium and report what a person would see go wrong.

Speaks the DevTools protocol over --remote-debugging-pipe (file descriptors 3 and 4, NUL-separated
JSON), so the check opens no port. It records every request the page made, console errors and
uncaught exceptions, whether every image decoded (naturalWidth > 0), and saves a full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.io import atomic_write_bytes

LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-pipe",
)
IMAGES_JS = """
(async () => {
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return imgs.map(i => ({alt: i.alt, src: i.currentSrc.slice(0, 40),
                         naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight}));
})()
"""


def find_browser() -> str | None:
    """Path of a Chromium to run ($FLYWHEEL_CHROMIUM first), or None."""
    override = os.environ.get("FLYWHEEL_CHROMIUM")
    if override:
        return shutil.which(override)
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


@dataclass
class PageCheck:
    url: str
    images: list[dict] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    page_size: tuple[int, int] = (0, 0)  # CSS px (width, height) of the whole page

    @property
    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]

    @property
    def broken_images(self) -> list[dict]:
        return [i for i in self.images if not i["naturalWidth"]]

    @property
    def problems(self) -> list[str]:
        """Everything wrong with the page, one line each (empty: the page is fine)."""
        return (
            [f"request left the machine: {u}" for u in self.external_requests]
            + [f"image did not decode: {i['alt']} ({i['src']}...)" for i in self.broken_images]
            + [f"console error: {e}" for e in self.console_errors]
        )


class _Pipe:
    """One DevTools connection over a browser's debugging pipe: send commands, collect events."""

    def __init__(self, to_browser: int, from_browser: int):
        self._out = os.fdopen(to_browser, "wb", buffering=0)
        self._in = os.fdopen(from_browser, "rb", buffering=0)
        self._next_id = 0
        self.events: list[dict] = []
        self._replies: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while chunk := self._in.read(1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:
                    self._replies.put(msg)
                else:
                    with self._lock:
                        self.events.append(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout_s=30.0):
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._replies.get(timeout=max(0.01, deadline - time.monotonic()))
            if reply["id"] == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})

    def wait_event(self, method: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for e in self.events:
                    if e["method"] == method:
                        return e
            time.sleep(0.05)
        raise TimeoutError(f"no {method} within {timeout_s} s")

    def close(self) -> None:
        self._out.close()


def check_page(
    page: Path, screenshot: Path, browser: str | None = None, width: int = 1280, timeout_s: float = 60.0
) -> PageCheck:
    """Open `page` from disk in headless Chromium; return what it requested, logged and drew."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found (tried {', '.join(BROWSERS)}; or set FLYWHEEL_CHROMIUM)")
    url = Path(page).resolve().as_uri()
    result = PageCheck(url=url)
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()

    def child_fds() -> None:  # the browser reads commands on fd 3 and writes replies on fd 4
        import fcntl

        high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
        high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        os.dup2(high_r, 3)
        os.dup2(high_w, 4)

    with tempfile.TemporaryDirectory(prefix="flywheel-chromium-") as profile:
        proc = subprocess.Popen(
            [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_fds,
            pass_fds=(3, 4),  # kept open after preexec_fn placed the pipes there
        )
        os.close(to_child_r)
        os.close(from_child_w)
        cdp = _Pipe(to_child_w, from_child_r)
        try:
            _drive(cdp, url, width, screenshot, result, timeout_s)
        finally:
            with contextlib.suppress(RuntimeError, queue.Empty, OSError):
                cdp.call("Browser.close", timeout_s=5)
            cdp.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return result


def _drive(cdp: _Pipe, url: str, width: int, screenshot: Path, result: PageCheck, timeout_s: float) -> None:
    target = cdp.call("Target.createTarget", {"url": "about:blank"}, timeout_s=timeout_s)["targetId"]
    session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        cdp.call(f"{domain}.enable", session=session)
    cdp.events.clear()  # only what the page itself does counts
    cdp.call("Page.navigate", {"url": url}, session=session)
    cdp.wait_event("Page.loadEventFired", timeout_s)
    images = cdp.call(
        "Runtime.evaluate",
        {"expression": IMAGES_JS, "awaitPromise": True, "returnByValue": True},
        session=session,
    )
    result.images = images["result"]["value"]
    size = cdp.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
    result.page_size = (int(size["width"]), int(size["height"]))
    shot = cdp.call(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {
                "x": 0,
                "y": 0,
                "width": max(width, size["width"]),
                "height": size["height"],
                "scale": 1,
            },
        },
        session=session,
        timeout_s=timeout_s,
    )
    atomic_write_bytes(screenshot, base64.b64decode(shot["data"]))
    result.screenshot = Path(screenshot)
    for e in list(cdp.events):
        p = e.get("params", {})
        if e["method"] == "Network.requestWillBeSent":
            url = p["request"]["url"]
            result.requests.append(url[:60] + "..." if url.startswith("data:") else url)
        elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            result.console_errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in p["args"])
            )
        elif e["method"] == "Runtime.exceptionThrown":
            result.console_errors.append(p["exceptionDetails"].get("text", "exception"))
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            result.console_errors.append(f"{p['entry'].get('source')}: {p['entry'].get('text')}")
