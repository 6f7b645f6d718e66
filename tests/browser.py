"""A tiny headless-Chromium driver for the browser tests of the HTML reports.

It speaks the Chrome DevTools Protocol (CDP) over ``--remote-debugging-pipe``: Chromium reads JSON
messages ended by ``\\0`` from its fd 3 and writes replies and events to its fd 4. A pipe needs no
port, no websocket client and no extra Python dependency.

    with Browser() as browser:
        page = browser.open(Path("report.html"), width=390, mobile=True)
        assert page.scroll_width() <= 390 and not page.errors
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

# Without these, headless Chromium keeps reaching for Google's hosts (updates, sync, QUIC probes),
# which on a closed network only costs time and fills stderr.
FLAGS = tuple(
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
    " --disable-component-update --disable-sync --disable-extensions".split()
)
MAX_SHOT_HEIGHT = 8000  # a full-page screenshot's cap in CSS pixels, so a runaway page cannot exhaust memory


class BrowserError(RuntimeError):
    """Chromium exited, or answered a CDP command with an error."""


def chromium() -> str | None:
    """The browser's path: ``$BROWSER_PATH``, else the first of chromium, chromium-browser and
    google-chrome on ``PATH``; None when there is none (the browser tests then skip)."""
    if os.environ.get("BROWSER_PATH"):
        return os.environ["BROWSER_PATH"]
    names = ("chromium", "chromium-browser", "google-chrome")
    return next((found for found in map(shutil.which, names) if found), None)


class Browser:
    """One headless Chromium process, driven over CDP; use it as a context manager.

    Args:
        path: the browser executable; default :func:`chromium`.
        timeout: seconds :meth:`send` and the page loads wait before raising ``TimeoutError``.
    """

    def __init__(self, path: str | None = None, *, timeout: float = 30.0) -> None:
        exe = path or chromium()
        if exe is None:
            raise FileNotFoundError("Browser(path=None): no Chromium found; set BROWSER_PATH or install chromium")
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise FileNotFoundError(f"Browser(path={exe!r}): not an executable file; pass Chromium's path")
        self.timeout = timeout
        self._dir = tempfile.mkdtemp(prefix="cdp-")
        child_in, parent_out = os.pipe()  # os.pipe() gives (read end, write end)
        parent_in, child_out = os.pipe()
        # the child's ends move to fds >= 5 so that renumbering them to 3 and 4 cannot clobber either
        child_r, child_w = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5) for fd in (child_in, child_out))
        os.close(child_in)
        os.close(child_out)

        def renumber() -> None:  # runs in the child between fork and exec; dup2 clears close-on-exec
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self._stderr = open(os.path.join(self._dir, "stderr.log"), "wb")  # closed in close()
        cmd = [exe, *FLAGS, f"--user-data-dir={self._dir}", "--remote-debugging-pipe", "about:blank"]
        # close_fds=False: Popen closes fds after preexec_fn, which would take 3 and 4 too; Python's own
        # fds are close-on-exec anyway (PEP 446), so only the two renumbered ones reach Chromium
        quiet = subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=quiet, stdout=quiet, stderr=self._stderr, preexec_fn=renumber, close_fds=False
            )
        except OSError:
            self._stderr.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        finally:
            os.close(child_r)
            os.close(child_w)
        self._out, self._in = parent_out, parent_in
        self._lock = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: dict[str | None, list[dict[str, Any]]] = {}
        self._next_id = 0
        self._eof = False
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Split the stream at ``\\0``; file replies by id and events by session, and wake waiters."""
        buffer = b""
        while chunk := os.read(self._in, 1 << 16):
            *messages, buffer = (buffer + chunk).split(b"\0")
            with self._lock:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self._events.setdefault(message.get("sessionId"), []).append(message)
                self._lock.notify_all()
        with self._lock:
            self._eof = True
            self._lock.notify_all()

    def _stderr_tail(self, chars: int = 2000) -> str:
        return Path(self._stderr.name).read_bytes()[-chars:].decode(errors="replace")

    def _wait(self, ready: Callable[[], Any], what: str, timeout: float | None) -> Any:
        """Wait until ``ready()`` (called under the lock) returns non-None; raise with stderr's tail."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._lock:
            while (found := ready()) is None:
                left = deadline - time.monotonic()
                if self._eof:
                    raise BrowserError(f"{what}: Chromium exited; its stderr ends:\n{self._stderr_tail()}")
                if left <= 0:
                    raise TimeoutError(
                        f"{what}: no answer in {timeout} s; Chromium's stderr ends:\n{self._stderr_tail()}"
                    )
                self._lock.wait(left)
            return found

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one CDP command (to ``session``'s target, or to the browser) and return its result."""
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        try:
            os.write(self._out, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise BrowserError(f"CDP {method}: Chromium exited; its stderr ends:\n{self._stderr_tail()}") from None
        reply = self._wait(lambda: self._replies.pop(message_id, None), f"CDP {method}", timeout)
        if "error" in reply:
            raise BrowserError(f"CDP {method}({params}) failed: {reply['error']}")
        return dict(reply.get("result", {}))

    def take_events(self, session: str | None, method: str | None = None) -> list[dict[str, Any]]:
        """Remove and return the queued events of ``session`` (only those named ``method``, if given)."""
        with self._lock:
            queue = self._events.get(session, [])
            taken = [event for event in queue if method in (None, event["method"])]
            queue[:] = [event for event in queue if method not in (None, event["method"])]
            return taken

    def wait_event(self, session: str, method: str) -> dict[str, Any]:
        """Wait for, remove and return the first queued event ``method`` of ``session``."""

        def first() -> dict[str, Any] | None:
            queue = self._events.get(session, [])
            index = next((i for i, event in enumerate(queue) if event["method"] == method), None)
            return None if index is None else queue.pop(index)

        return dict(self._wait(first, f"event {method}", None))

    def open(self, path: Path, width: int, height: int = 900, mobile: bool = False, fragment: str = "") -> Page:
        """Open ``path`` (plus ``#fragment``) in a new tab of ``width`` x ``height`` CSS pixels; wait for its load."""
        if width <= 0 or height <= 0:
            raise ValueError(f"Browser.open: width={width}, height={height}; both must be positive pixels")
        if not path.is_file():
            raise FileNotFoundError(f"Browser.open: path={str(path)!r} is not a file; pass an HTML file")
        if fragment.startswith("#"):
            raise ValueError(f"Browser.open: fragment={fragment!r}; pass it without the leading '#'")
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, width, height, mobile)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        page.set_metrics(height)
        self.take_events(session, "Page.loadEventFired")  # about:blank's own, if it came late
        url = path.resolve().as_uri() + (f"#{fragment}" if fragment else "")
        navigation = self.send("Page.navigate", {"url": url}, session)
        if "errorText" in navigation:
            raise BrowserError(f"Browser.open: {url} did not load: {navigation['errorText']}")
        # a stray about:blank load could still come after navigate: wait until the file is the document
        self.wait_event(session, "Page.loadEventFired")
        while page.evaluate("location.protocol + document.readyState") != "file:complete":
            self.wait_event(session, "Page.loadEventFired")
        return page

    def close(self) -> None:
        """Ask Chromium to quit (Browser.close), end it if it does not, and remove its profile folder."""
        if self._proc.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except (TimeoutError, BrowserError):
                pass  # it is ended below either way
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        os.close(self._out)
        self._reader.join(5)
        os.close(self._in)
        self._stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class Page:
    """One tab opened by :meth:`Browser.open`, attached to its own CDP session."""

    def __init__(self, browser: Browser, session: str, width: int, height: int, mobile: bool) -> None:
        self.browser, self.session = browser, session
        self.width, self.height, self.mobile = width, height, mobile
        self._errors: list[str] = []

    def set_metrics(self, height: int) -> None:
        """Emulate a viewport of the page's width and ``height`` CSS pixels at device scale 1."""
        metrics = {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": self.mobile}
        self.browser.send("Emulation.setDeviceMetricsOverride", metrics, self.session)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page; a thrown exception raises BrowserError."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        reply = self.browser.send("Runtime.evaluate", params, self.session)
        if "exceptionDetails" in reply:
            raise BrowserError(f"evaluate({expression!r}) threw: {_describe(reply['exceptionDetails'])}")
        return reply["result"].get("value")

    @property
    def errors(self) -> list[str]:
        """Every console error/assert, uncaught exception and error log entry since the page opened."""
        for event in self.browser.take_events(self.session):
            params = event["params"]
            if event["method"] == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                args = params.get("args", [])
                self._errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif event["method"] == "Runtime.exceptionThrown":
                self._errors.append(_describe(params["exceptionDetails"]))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                self._errors.append(params["entry"]["text"])
        return list(self._errors)

    def screenshot(self, path: Path, full_page: bool = True) -> None:
        """Write a PNG of the viewport, or of the whole document (its scroll height, capped) to ``path``."""
        if full_page:
            height = int(self.evaluate("document.documentElement.scrollHeight"))
            self.set_metrics(max(1, min(height, MAX_SHOT_HEIGHT)))
        shot = self.browser.send("Page.captureScreenshot", {"format": "png"}, self.session)
        if full_page:
            self.set_metrics(self.height)
        path.write_bytes(base64.b64decode(shot["data"]))

    def scroll_width(self) -> int:
        """The document's scroll width in CSS pixels: above the page's width means horizontal overflow."""
        return int(self.evaluate("document.documentElement.scrollWidth"))


def _describe(details: dict[str, Any]) -> str:
    """A CDP ExceptionDetails as one line: the thrown value's description (message and stack), else its text."""
    return str(details.get("exception", {}).get("description", details["text"]))
