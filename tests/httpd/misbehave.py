#!/usr/bin/env python3
"""A static HTTP server on 127.0.0.1 that misbehaves on purpose, for imgfetch's tests.

    misbehave.py ROOT [--port N] [--idle SECONDS] [--log FILE]

Prints the port it listens on (one line), then serves /MODE/PATH as ROOT/PATH. MODE picks the
misbehaviour; it applies to image files (anything but SHA256SUMS*) unless said otherwise:

  ok          plain static server with Range support (206, Content-Range, Accept-Ranges)
  norange     ignores Range and sends no Accept-Ranges: always 200 with the whole file
  stall       the first image GET stops sending halfway and hangs (bounded) until the client leaves
  hang        every image GET stops sending halfway and hangs (bounded)
  close       every image GET sends at most 256 KiB of what was asked, then closes
  flaky       every second request (manifest included) fails with 500
  badrange    answers 206 with a Content-Range one byte off
  more        sends 4 KiB more than the Content-Length it announces
  bigger      no Range support, and GET announces and sends 4 KiB more than HEAD said
  tamper      one byte of the image flipped
  notfound    the image is 404 (the manifest is served)
  r301 r302 r307   every request is redirected to /ok/PATH with that status
  nolength    HEAD on the image is refused (405); GET sends it whole without Content-Length
  endless     HEAD on the image is refused (405); GET sends no Content-Length and an endless body
              (the file, then 0xee bytes until the client leaves or 15 minutes have passed)
  novalid     manifests without ETag/Last-Modified, conditional requests ignored
  hugeidx     HEAD on the image claims 20 GB; the block index (NAME.zidx) is sent without
              Content-Length, then 0xee bytes up to 96 MiB in all or until the client leaves

Manifests (SHA256SUMS*) carry ETag and Last-Modified made as nginx makes them (mtime and size);
If-None-Match naming the ETag, or without it an If-Modified-Since not older than the file, gets
304 Not Modified with no body (all modes but novalid).

Several ranges in one request (`Range: bytes=a-b,c-d`, delta downloads; see serve_multi):
  ok          answered 206 multipart/byteranges, one part per range, as nginx does
  tamper      the same with the first byte of the first part flipped
  single      like S3: a single range is served, several ranges get 200 and the whole file

With --log FILE, one line per request is appended to FILE once its answer is sent:
`METHOD PATH STATUS RECV SENT`, RECV the bytes of the request line and headers, SENT the bytes
written back (status line, headers, body): what the fetch cost on the wire, for the tests that
count it.

Exits by itself after --idle seconds without a request (default 60) and after 15 minutes in all.
Binds 127.0.0.1 only.
"""
import email.utils
import http.server
import os
import socket
import sys
import threading
import time

ROOT = None
LOG = None
LOCK = threading.Lock()
COUNT = {}
LAST = [time.monotonic()]


def bump(mode):
    with LOCK:
        COUNT[mode] = COUNT.get(mode, 0) + 1
        LAST[0] = time.monotonic()
        return COUNT[mode]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "misbehave/1"

    def setup(self):
        super().setup()
        self.wfile = Counting(self.wfile)

    def handle_one_request(self):
        self.wfile.sent = 0
        self.status = 0
        super().handle_one_request()
        if LOG and getattr(self, "command", None):
            recv = len(self.raw_requestline) + len(bytes(self.headers)) if self.headers else 0
            with LOCK, open(LOG, "a") as f:
                f.write("%s %s %d %d %d\n" % (self.command, self.path, self.status, recv, self.wfile.sent))

    def send_response(self, code, message=None):
        self.status = code
        super().send_response(code, message)

    def sendfile(self, f, start, length):
        self.wfile.flush()
        self.wfile.sent += self.connection.sendfile(f, start, length)

    def log_message(self, fmt, *args):
        if os.environ.get("MISBEHAVE_LOG"):
            sys.stderr.write("misbehave: %s\n" % (fmt % args))

    def end_headers(self):
        for k, v in getattr(self, "extra", ()):
            self.send_header(k, v)
        self.extra = ()
        super().end_headers()

    def not_modified(self, path, mode):
        """Validators for a manifest, and 304 when the request's match (True: answered)."""
        if mode == "novalid":
            return False
        st = os.stat(path)
        etag = '"%x-%x"' % (st.st_mtime_ns, st.st_size)
        modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        self.extra = [("ETag", etag), ("Last-Modified", modified)]
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if inm is not None:
            hit = inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")]
        elif ims is not None:
            try:
                hit = int(st.st_mtime) <= email.utils.parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                hit = False
        else:
            hit = False
        if hit:
            self.send_response(304)
            self.end_headers()
        return hit

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def fail(self, code, msg=""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        if not self.command == "HEAD":
            self.wfile.write(msg.encode())

    def serve(self, head):
        parts = self.path.split("?")[0].lstrip("/").split("/", 1)
        if len(parts) != 2 or ".." in parts[1].split("/"):
            return self.fail(404, "no such path\n")
        mode, rel = parts
        n = bump(mode)
        if mode in ("r301", "r302", "r307"):
            self.send_response(int(mode[1:]))
            self.send_header("Location", "/ok/" + rel)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "flaky" and n % 2 == 0:
            return self.fail(500, "flaky\n")
        path = os.path.join(ROOT, rel)
        if not os.path.isfile(path):
            return self.fail(404, "not found\n")
        # The signed block index is served plainly in every mode (the tests tamper with blocks).
        image = not os.path.basename(rel).startswith("SHA256SUMS") and not rel.endswith(".zidx")
        if image and mode == "notfound":
            return self.fail(404, "not found\n")
        if not image and self.not_modified(path, mode):
            return
        size = os.path.getsize(path)
        if mode == "hugeidx" and rel.endswith(".zidx") and not head:
            self.send_response(200)
            self.end_headers()
            with open(path, "rb") as f:
                self.wfile.write(f.read())
            block = b"\xee" * (64 << 10)
            try:
                while self.wfile.sent + len(block) <= 96 << 20:
                    self.wfile.write(block)
                    LAST[0] = time.monotonic()
            except OSError:
                pass  # the client left: what was sent is logged
            return
        if image and mode == "hugeidx" and head:
            self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(20 * 10**9))
            self.end_headers()
            return
        if image and mode in ("nolength", "endless"):
            if head:
                return self.fail(405, "no HEAD here\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            with open(path, "rb") as f:
                self.wfile.write(f.read())
            if mode == "endless":
                block = b"\xee" * (64 << 10)
                end = time.monotonic() + 900
                while time.monotonic() < end:
                    self.wfile.write(block)
                    LAST[0] = time.monotonic()
            return
        ranges = not (image and mode in ("norange", "bigger"))
        rng = self.headers.get("Range")
        if rng and "," in rng and ranges and image and not head:
            return self.serve_multi(mode, path, size, rng)
        start, end = 0, size - 1
        partial = False
        if rng and ranges and not head:
            try:
                unit, spec = rng.split("=", 1)
                a, b = spec.split("-", 1)
                start = int(a)
                end = min(int(b), size - 1) if b else size - 1
                assert unit.strip() == "bytes" and 0 <= start <= end
            except Exception:
                return self.fail(416, "bad range\n")
            partial = True
        length = end - start + 1
        extra = 4096 if image and mode in ("more", "bigger") else 0
        announced = length + (extra if mode == "bigger" and not head else 0)
        self.send_response(206 if partial else 200)
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
        if partial:
            shown = start + 1 if image and mode == "badrange" else start
            self.send_header("Content-Range", "bytes %d-%d/%d" % (shown, shown + length - 1, size))
        self.send_header("Content-Length", str(announced))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if head:
            return
        if image and (mode == "hang" or mode == "stall" and bump("stall-get") == 1):
            with open(path, "rb") as f:
                f.seek(start)
                self.wfile.write(f.read(length // 2))
            self.wfile.flush()
            for _ in range(100):  # bounded: at most 20 s
                time.sleep(0.2)
            return
        if image and mode == "close":
            length = min(length, 256 << 10)
        if image and mode == "tamper":
            with open(path, "rb") as f:
                f.seek(start)
                data = bytearray(f.read(length))
            flip = size // 2 - start
            if 0 <= flip < len(data):
                data[flip] ^= 0xFF
            self.wfile.write(data)
        else:
            with open(path, "rb") as f:
                self.sendfile(f, start, length)
        if extra:
            self.wfile.write(b"\xee" * extra)

    def serve_multi(self, mode, path, size, rng):
        """Several ranges: multipart/byteranges (ok, tamper), or the whole file (single)."""
        if mode == "single":
            self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(path, "rb") as f:
                self.sendfile(f, 0, size)
            return
        try:
            unit, spec = rng.split("=", 1)
            assert unit.strip() == "bytes"
            spans = []
            for r in spec.split(","):
                a, b = r.strip().split("-", 1)
                a, b = int(a), min(int(b), size - 1)
                assert 0 <= a <= b
                spans.append((a, b))
        except Exception:
            return self.fail(416, "bad range\n")
        boundary = "liveroot%08x" % (len(spans) * 2654435761 % 2**32)
        heads = [("\r\n--%s\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes %d-%d/%d\r\n\r\n"
                  % (boundary, a, b, size)).encode() for a, b in spans]
        tail = ("\r\n--%s--\r\n" % boundary).encode()
        total = sum(len(h) for h in heads) + sum(b - a + 1 for a, b in spans) + len(tail)
        self.send_response(206)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "multipart/byteranges; boundary=" + boundary)
        self.send_header("Content-Length", str(total))
        self.end_headers()
        with open(path, "rb") as f:
            for k, ((a, b), h) in enumerate(zip(spans, heads)):
                self.wfile.write(h)
                f.seek(a)
                data = bytearray(f.read(b - a + 1))
                if mode == "tamper" and k == 0:
                    data[0] ^= 0xFF
                self.wfile.write(data)
        self.wfile.write(tail)


class Counting:
    """The response stream, counting what is written to the socket."""

    def __init__(self, inner):
        self.inner, self.sent = inner, 0

    def write(self, b):
        n = self.inner.write(b)
        self.sent += len(b)
        return n

    def __getattr__(self, name):
        return getattr(self.inner, name)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Clients hanging up mid-body is what the tests provoke: not worth a traceback.
        if os.environ.get("MISBEHAVE_LOG"):
            super().handle_error(request, client_address)


def main():
    global ROOT, LOG
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit("usage: misbehave.py ROOT [--port N] [--idle SECONDS] [--log FILE]")
    ROOT = os.path.abspath(args[0])
    port, idle = 0, 60.0
    i = 1
    while i < len(args):
        if args[i] == "--port":
            port = int(args[i + 1])
        elif args[i] == "--log":
            LOG = args[i + 1]
        elif args[i] == "--idle":
            idle = float(args[i + 1])
        else:
            sys.exit("misbehave.py: unknown option " + args[i])
        i += 2
    srv = Server(("127.0.0.1", port), Handler)
    print(srv.server_address[1], flush=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    born = time.monotonic()
    while time.monotonic() - LAST[0] < idle and time.monotonic() - born < 900:
        time.sleep(0.5)
    os._exit(0)


if __name__ == "__main__":
    main()
