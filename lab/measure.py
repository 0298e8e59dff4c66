#!/usr/bin/env python3
"""Small measurements for lab/bench.sh, run inside the lab's hosts.

  measure.py serve PORT             greets each connection with one line,
                                    then echoes (bounded: 600 s)
  measure.py rtt HOST PORT N        median and p99 round trip of N 64-byte
                                    echoes on one connection, in ms
  measure.py ttfb HOST PORT N       median time from connect to the
                                    greeting's first byte, N connections, ms
"""
import socket
import statistics
import sys
import threading
import time


def serve(port):
    listener = socket.create_server(("0.0.0.0", port), reuse_port=True)
    listener.settimeout(600)

    def echo(conn):
        with conn:
            conn.sendall(b"hello\n")
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def connect(host, port):
    conn = socket.create_connection((host, port), timeout=10)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def recv_exactly(conn, n):
    got = b""
    while len(got) < n:
        data = conn.recv(n - len(got))
        if not data:
            raise SystemExit("connection closed early")
        got += data
    return got


def rtt(host, port, n):
    with connect(host, port) as conn:
        line = b""
        while not line.endswith(b"\n"):
            line += recv_exactly(conn, 1)
        times = []
        payload = b"x" * 64
        for _ in range(n):
            t0 = time.perf_counter()
            conn.sendall(payload)
            recv_exactly(conn, len(payload))
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(f"{statistics.median(times):.2f} {times[int(len(times) * 0.99) - 1]:.2f}")


def ttfb(host, port, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with connect(host, port) as conn:
            recv_exactly(conn, 1)
            times.append((time.perf_counter() - t0) * 1000)
    print(f"{statistics.median(times):.2f}")


def main():
    what, args = sys.argv[1], sys.argv[2:]
    if what == "serve":
        serve(int(args[0]))
    elif what == "rtt":
        rtt(args[0], int(args[1]), int(args[2]))
    elif what == "ttfb":
        ttfb(args[0], int(args[1]), int(args[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
