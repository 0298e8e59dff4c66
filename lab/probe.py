#!/usr/bin/env python3
"""Small network probes for the lab's self-test, run inside its hosts.

  probe.py serve PORT [--lifetime S]
      UDP and TCP reflector on 0.0.0.0:PORT: answers every UDP datagram,
      and every TCP connection, with the peer's address as "IP:PORT".
  probe.py udp [--bind PORT] [--timeout S] DEST...
      From ONE UDP socket, asks each reflector DEST (IP:PORT) for the
      address it sees; prints "DEST OBSERVED" per line ("DEST -" when no
      answer came). Exit 0 only if every DEST answered.
  probe.py gso DEST [--segments N] [--timeout S]
      Sends N 1200-byte datagrams to reflector DEST in ONE send with UDP
      GSO (UDP_SEGMENT, as QUIC stacks do), prints how many answers came.
      Exit 0 if all N did.
  probe.py tcp DEST [--timeout S]
      Connects to DEST and prints what the reflector saw. Exit 1 on failure.
  probe.py punch --bind PORT --reflector DEST --me FILE --peer FILE [--timeout S]
      UDP hole punch: learns this socket's public address from the
      reflector, writes it to FILE --me, waits for the peer's in --peer,
      then both send to each other. Exit 0 if a datagram from the peer
      arrived within the timeout.

Every wait is bounded; nothing here runs longer than its timeout.
"""
import argparse
import os
import select
import socket
import sys
import time


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def show(a):
    return f"{a[0]}:{a[1]}"


def serve(args):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", args.port))
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", args.port))
    tcp.listen(16)
    print(f"reflecting on port {args.port}", flush=True)
    end = time.monotonic() + args.lifetime
    while time.monotonic() < end:
        ready, _, _ = select.select([udp, tcp], [], [], 1.0)
        if udp in ready:
            data, peer = udp.recvfrom(2048)
            udp.sendto(show(peer).encode(), peer)
            print(f"udp {show(peer)}", flush=True)
        if tcp in ready:
            conn, peer = tcp.accept()
            with conn:
                conn.settimeout(1.0)
                try:
                    conn.sendall((show(peer) + "\n").encode())
                except OSError:
                    pass
            print(f"tcp {show(peer)}", flush=True)


def ask(sock, dest, timeout):
    """The address `dest` saw this socket at, or None. Retries, since the
    lab's links may drop datagrams."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.sendto(b"?", dest)
        ready, _, _ = select.select([sock], [], [], min(0.2, max(0.0, end - time.monotonic())))
        if ready:
            data, peer = sock.recvfrom(2048)
            if peer == dest:
                return data.decode()
    return None


def udp(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", args.bind))
    ok = True
    for text in args.dest:
        seen = ask(sock, addr(text), args.timeout)
        ok &= seen is not None
        print(f"{text} {seen or '-'}", flush=True)
    return 0 if ok else 1


UDP_SEGMENT = 103  # from linux/udp.h


def gso(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, 1200)
    sock.sendto(b"g" * (1200 * args.segments), addr(args.dest))
    got = 0
    end = time.monotonic() + args.timeout
    while got < args.segments and time.monotonic() < end:
        ready, _, _ = select.select([sock], [], [], max(0.0, end - time.monotonic()))
        if ready:
            sock.recvfrom(2048)
            got += 1
    print(f"{got}/{args.segments} answered")
    return 0 if got == args.segments else 1


def tcp(args):
    try:
        with socket.create_connection(addr(args.dest), timeout=args.timeout) as s:
            s.settimeout(args.timeout)
            print(s.recv(100).decode().strip())
        return 0
    except OSError as e:
        print(f"{args.dest}: {e}", file=sys.stderr)
        return 1


def punch(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", args.bind))
    end = time.monotonic() + args.timeout
    mine = ask(sock, addr(args.reflector), args.timeout)
    if mine is None:
        print("no answer from the reflector")
        return 1
    tmp = args.me + ".tmp"
    with open(tmp, "w") as f:
        f.write(mine)
    os.rename(tmp, args.me)
    while not os.path.exists(args.peer):
        if time.monotonic() > end:
            print(f"me {mine}: the peer never said where it is")
            return 1
        time.sleep(0.02)
    with open(args.peer) as f:
        peer = addr(f.read().strip())
    got_at = None
    while time.monotonic() < end:
        sock.sendto(b"punch", peer)
        ready, _, _ = select.select([sock], [], [], 0.02)
        if ready:
            data, src = sock.recvfrom(2048)
            if src == peer and got_at is None:
                got_at = time.monotonic()
        # Keep sending a little after success, so the peer hears us too.
        if got_at is not None and time.monotonic() - got_at > 0.5:
            break
    print(f"me {mine} peer {show(peer)}: {'received' if got_at else 'nothing received'}")
    return 0 if got_at else 1


def main():
    p = argparse.ArgumentParser(description="network probes for the lab")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("port", type=int)
    s.add_argument("--lifetime", type=float, default=600)
    u = sub.add_parser("udp")
    u.add_argument("--bind", type=int, default=0)
    u.add_argument("--timeout", type=float, default=2)
    u.add_argument("dest", nargs="+")
    t = sub.add_parser("tcp")
    t.add_argument("dest")
    t.add_argument("--timeout", type=float, default=2)
    g = sub.add_parser("gso")
    g.add_argument("dest")
    g.add_argument("--segments", type=int, default=10)
    g.add_argument("--timeout", type=float, default=2)
    h = sub.add_parser("punch")
    h.add_argument("--bind", type=int, required=True)
    h.add_argument("--reflector", required=True)
    h.add_argument("--me", required=True)
    h.add_argument("--peer", required=True)
    h.add_argument("--timeout", type=float, default=4)
    args = p.parse_args()
    handler = {"serve": serve, "udp": udp, "tcp": tcp, "gso": gso, "punch": punch}[args.cmd]
    sys.exit(handler(args) or 0)


if __name__ == "__main__":
    main()
