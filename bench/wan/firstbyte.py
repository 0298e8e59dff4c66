"""Echo service and client for the wide-area check.

usage: firstbyte.py serve PORT          echo every connection until EOF
       firstbyte.py measure PORT COUNT  sequential connect + 1-byte echo,
                                        prints the median in milliseconds
"""
import socket
import statistics
import sys
import threading
import time


def serve(port):
    listener = socket.create_server(("127.0.0.1", port))
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def measure(port, count):
    times = []
    for _ in range(count):
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sendall(b"x")
            if conn.recv(1) != b"x":
                sys.exit("no echo")
        times.append(time.perf_counter() - start)
    print(f"{statistics.median(times) * 1000:.1f}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        measure(int(sys.argv[2]), int(sys.argv[3]))
