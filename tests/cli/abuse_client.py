#!/usr/bin/env python3
"""Hostile HTTP clients for tests/cli/test_serve_abuse.sh (loopback only, every loop bounded in time).

  slowloris PORT N SECONDS [post]  N connections that send a request head (or, with "post", a body) one byte every
                                   0.5 s; prints "ANSWERED STATUSES MAX_SECONDS STILL_OPEN" when the server has
                                   closed them all or SECONDS have passed
  bighead PORT BYTES               one request with BYTES of header lines, sent while reading; prints the status
  raw PORT HEX [half]              sends the bytes (hex), optionally shuts down writing, reads until the server
                                   closes (5 s at most); prints the status of every response, space-separated
  idle PORT N SECONDS              opens N connections that send nothing; prints how many the server closed within
                                   SECONDS
  png WIDTH HEIGHT FILE            writes a gray WIDTH x HEIGHT PNG
  tiny_request N FILE              writes a request JSON of N 1x1 PNG images
"""
import base64
import select
import socket
import struct
import sys
import time
import zlib


def connect(port):
    return socket.create_connection(("127.0.0.1", int(port)), timeout=5)


def statuses(data):
    out = []
    for part in data.split(b"HTTP/1.1 ")[1:]:
        code = part[:3]
        if code.isdigit():
            out.append(code.decode())
    return out


def slowloris(port, n, seconds, post=False):
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n"
    if post:
        head = b"POST /inference HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"
    socks, got, closed_at = [], {}, {}
    start = time.time()
    for _ in range(n):
        s = connect(port)
        s.sendall(head)
        s.setblocking(False)
        socks.append(s)
    while time.time() - start < seconds and len(closed_at) < n:
        deadline = time.time() + 0.5
        while time.time() < deadline:
            live = [s for s in socks if s not in closed_at]
            if not live:
                break
            readable, _, _ = select.select(live, [], [], max(0.0, deadline - time.time()))
            for s in readable:
                try:
                    chunk = s.recv(65536)
                except OSError:
                    chunk = b""
                if chunk:
                    got[s] = got.get(s, b"") + chunk
                else:
                    closed_at[s] = time.time() - start
        for s in socks:
            if s not in closed_at:
                try:
                    s.send(b"X" if not post else b" ")
                except OSError:
                    closed_at[s] = time.time() - start
    answered = [c for s in socks for c in statuses(got.get(s, b""))]
    codes = ",".join(sorted(set(answered))) or "none"
    print(len(answered), codes, round(max(closed_at.values(), default=0), 1), n - len(closed_at))


def bighead(port, size):
    s = connect(port)
    line = b"X-Pad: " + b"a" * 990 + b"\r\n"
    data = b"GET /health HTTP/1.1\r\nHost: x\r\n" + line * (size // len(line)) + b"\r\n"
    s.setblocking(False)
    sent, got = 0, b""
    deadline = time.time() + 10
    while time.time() < deadline:
        want_write = [s] if sent < len(data) else []
        readable, writable, _ = select.select([s], want_write, [], 0.5)
        if readable:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
        if writable:
            try:
                sent += s.send(data[sent:sent + 65536])
            except OSError:
                want_write = []
                sent = len(data)
    print((statuses(got) or ["none"])[0])


def raw(port, payload, half=False):
    s = connect(port)
    s.sendall(payload)
    if half:
        s.shutdown(socket.SHUT_WR)
    got = b""
    deadline = time.time() + 5
    s.settimeout(1)
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    print(" ".join(statuses(got)) or "none")


def idle(port, n, seconds):
    socks = [connect(port) for _ in range(n)]
    for s in socks:
        s.setblocking(False)
    closed = set()
    deadline = time.time() + seconds
    while time.time() < deadline and len(closed) < n:
        readable, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.5)
        for s in readable:
            try:
                if not s.recv(4096):
                    closed.add(s)
            except OSError:
                closed.add(s)
    print(len(closed))


def png(width, height, value=128):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    row = b"\x00" + bytes([value]) * width
    idat = zlib.compress(row * height, 6)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "slowloris":
        slowloris(args[0], int(args[1]), float(args[2]), len(args) > 3 and args[3] == "post")
    elif cmd == "bighead":
        bighead(args[0], int(args[1]))
    elif cmd == "raw":
        raw(args[0], bytes.fromhex(args[1]), len(args) > 2 and args[2] == "half")
    elif cmd == "idle":
        idle(args[0], int(args[1]), float(args[2]))
    elif cmd == "png":
        open(args[2], "wb").write(png(int(args[0]), int(args[1])))
    elif cmd == "tiny_request":
        data = base64.b64encode(png(1, 1)).decode()
        with open(args[1], "w") as f:
            f.write('{"instances": [' + ", ".join('{"data": "%s"}' % data for _ in range(int(args[0]))) + "]}")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
