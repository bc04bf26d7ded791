"""Debian's chromium, headless, driven over the DevTools protocol on a pipe (no WebSocket library needed).

``Chromium().load(path)`` opens a local page in a new tab and returns what a
person would notice and what the page did: console messages and uncaught
exceptions, every request the page made, a layout probe (a JavaScript
expression evaluated by DevTools, which the page's Content-Security-Policy
does not govern) and a PNG screenshot.  The browser is started with a proxy
on a loopback port nothing listens on and a host resolver that resolves
nothing, so a page that tries to fetch something cannot reach the network
(and the request is still seen).

`make browser` installs chromium; a missing one fails the test, as a missing
simulator does.
"""
import base64
import fcntl
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import zlib

CHROMIUM = os.environ.get("VMCRYPT_TEST_CHROMIUM", "/usr/bin/chromium")


class ChromiumError(Exception):
    pass


def _moved_above_ten(fd):
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def unused_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PageLoad(object):
    def __init__(self, url, console, requests, probe, screenshot):
        self.url = url
        self.console = console  # [(level, text)] of console calls, log entries and uncaught exceptions
        self.requests = requests  # URLs the page requested, the page itself first
        self.probe = probe  # the value of the probe expression
        self.screenshot = screenshot  # PNG bytes

    def errors(self):
        return [(level, text) for level, text in self.console if level in ("error", "assert", "warning")]


class Chromium(object):
    def __init__(self, timeout=60):
        if not os.access(CHROMIUM, os.X_OK):
            raise ChromiumError("%s is missing: run `make browser` (apt-get install chromium)" % CHROMIUM)
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="vmcrypt-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # The browser's ends above 10, so that neither is fd 3 or 4 while bash moves them there.
        to_browser_read, from_browser_write = [_moved_above_ten(fd) for fd in (to_browser_read, from_browser_write)]
        self._log = tempfile.TemporaryFile()
        arguments = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                     "--user-data-dir=" + self.profile, "--no-first-run", "--no-default-browser-check",
                     "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,2000",
                     "--proxy-server=http://127.0.0.1:%d" % unused_loopback_port(), "--proxy-bypass-list=<-loopback>",
                     "--host-resolver-rules=MAP * ~NOTFOUND", "about:blank"]
        # DevTools reads commands from fd 3 and writes answers to fd 4.
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", 'exec "$@" 3<&%d 4>&%d' % (to_browser_read, from_browser_write), "sh"] + arguments,
            pass_fds=(to_browser_read, from_browser_write), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=self._log)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self._events = []

    # -- the protocol ---------------------------------------------------------------------------------------------
    def _message(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise ChromiumError("chromium did not answer in %d s" % self.timeout)
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                self._log.seek(0)
                raise ChromiumError("chromium exited: %s" % self._log.read().decode(errors="replace")[-2000:])
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message.decode("utf-8"))

    def call(self, method, session=None, **params):
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._to_browser, json.dumps(command).encode("utf-8") + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise ChromiumError("%s: %s" % (method, message["error"]))
                return message.get("result", {})
            self._events.append(message)

    def _wait_for(self, method, session):
        deadline = time.monotonic() + self.timeout
        while not any(event.get("method") == method and event.get("sessionId") == session for event in self._events):
            self._events.append(self._message(deadline))

    # -- what the tests use ---------------------------------------------------------------------------------------
    def load(self, path, probe="null", clip_selector=None):
        """Open ``path`` in a new tab; evaluate ``probe`` once it has loaded; screenshot it (or one element)."""
        url = "file://" + os.path.abspath(path)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(domain + ".enable", session)
            self._events = []
            self.call("Page.navigate", session, url=url)
            self._wait_for("Page.loadEventFired", session)
            value = self.call("Runtime.evaluate", session, expression=probe, returnByValue=True)
            if "exceptionDetails" in value:
                raise ChromiumError("the probe failed: %s" % value["exceptionDetails"])
            shot = {"format": "png", "captureBeyondViewport": True}
            if clip_selector:
                box = self.call("Runtime.evaluate", session, returnByValue=True, expression=(
                    "(() => { const r = document.querySelector(%s).getBoundingClientRect();"
                    " return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height,"
                    " scale: 1}; })()" % json.dumps(clip_selector)))["result"]["value"]
                shot["clip"] = box
            screenshot = base64.b64decode(self.call("Page.captureScreenshot", session, **shot)["data"])
            events = [event for event in self._events if event.get("sessionId") == session]
        finally:
            self.call("Target.closeTarget", targetId=target)
        return PageLoad(url, _console(events), [event["params"]["request"]["url"] for event in events
                                                if event.get("method") == "Network.requestWillBeSent"],
                        value["result"].get("value"), screenshot)

    def close(self):
        try:
            self.call("Browser.close")
        except ChromiumError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            os.close(fd)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def _console(events):
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            found.append((params["type"], " ".join(str(arg.get("value", arg.get("description")))
                                                   for arg in params.get("args", []))))
        elif method == "Runtime.exceptionThrown":
            found.append(("error", params["exceptionDetails"].get("text", "exception")))
        elif method == "Log.entryAdded":
            found.append((params["entry"]["level"], params["entry"]["text"]))
    return found


# -- reading the screenshot ----------------------------------------------------------------------------------------
def png_pixels(data):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    position, chunks, header = 8, [], None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, color, _compression, _filter, interlace = header
    if depth != 8 or color not in (2, 6) or interlace:
        raise ValueError("unsupported PNG: depth %d, color type %d, interlace %d" % (depth, color, interlace))
    step = 3 if color == 2 else 4
    raw, stride, rows, previous = zlib.decompress(b"".join(chunks)), width * step, [], bytearray(width * step)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                corner = previous[i - step] if i >= step else 0
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[i] = (line[i] + near[2]) & 0xFF
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, step)])
        previous = line
    return width, height, rows


def hex_color(text):
    return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
