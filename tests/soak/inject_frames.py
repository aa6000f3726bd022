#!/usr/bin/python3
"""Malformed-frame injector for tests/soak/soak.sh.

Binds a ZeroMQ PUSH socket at ENDPOINT (a second --send-spec of the handler,
as a second, broken Mongrel2 would be) and pushes malformed frames of many
kinds: a steady RATE per second plus a burst of BURST frames every minute,
for SECONDS seconds. Every second it writes the number sent so far to
STATUS_FILE. Loopback only: ENDPOINT must be tcp://127.0.0.1:PORT.

    inject_frames.py ENDPOINT SECONDS STATUS_FILE [RATE=100] [BURST=2000]

Needs python3-zmq (the Debian package; /usr/bin/python3).
"""
import random
import signal
import sys
import time

import zmq

SENDER = b"54c6755b-9628-40a4-9a2d-cc82a816345e"
HEADERS = b'{"PATH":"/x","METHOD":"GET","VERSION":"HTTP/1.1","URI":"/x"}'


def ns(b):
    return str(len(b)).encode() + b":" + b + b","


def make_frame(rng, i):
    """One malformed frame; the kinds of tests/integration/faults_test.cpp."""
    key = SENDER + b" " + str(900000 + i).encode() + b" "
    k = i % 14
    if k == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(200)))
    if k == 1:
        return b"no structure at all"
    if k == 2:
        return b""
    if k == 3:
        return key + b"/x 999:{},0:,"
    if k == 4:
        return key + b"/x " + ns(b"{{{") + ns(b"")
    if k == 5:
        return key + b"/x " + ns(b"{}") + ns(b"")
    if k == 6:
        return key + b"/x " + ns(HEADERS) + b"99999999:,"
    if k == 7:
        return SENDER + b" abc /x " + ns(b"{}") + ns(b"")
    if k == 8:
        return key + b"/x 9:1:a,1:b,}0:,"
    if k == 9:
        whole = key + b"/x " + ns(HEADERS) + ns(b"")
        return whole[: rng.randrange(len(whole))]
    if k == 10:
        return key + b"/x " + ns(b'{"PATH\0":1}') + ns(b"") + rng.randbytes(16)
    if k == 11:
        return key + b"/x -5:{},0:,"
    if k == 12:
        return SENDER + b" 18446744073709551617 /x " + ns(b"{}") + ns(b"")
    return key + b"/x " + ns(rng.randbytes(65536)) + ns(b"")


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, seconds, status_file = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    rate = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    burst = int(sys.argv[5]) if len(sys.argv) > 5 else 2000
    if not endpoint.startswith("tcp://127.0.0.1:"):
        print("inject_frames: loopback endpoints only", file=sys.stderr)
        return 2

    stop = False

    def on_term(_sig, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.bind(endpoint)
    rng = random.Random(20240606)
    sent = blocked = 0
    start = time.monotonic()
    end = start + seconds
    next_burst = start + 60
    last_status = 0.0

    def push(n):
        nonlocal sent, blocked
        for _ in range(n):
            try:
                sock.send(make_frame(rng, sent), zmq.NOBLOCK)
                sent += 1
            except zmq.Again:  # no peer yet, or the handler is not reading
                blocked += 1
                return

    while not stop and time.monotonic() < end:
        tick = time.monotonic()
        push(rate // 10)
        if tick >= next_burst:
            push(burst)
            next_burst += 60
        if tick - last_status >= 1:
            with open(status_file, "w") as f:
                f.write(f"{sent} {blocked}\n")
            last_status = tick
        time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
    with open(status_file, "w") as f:
        f.write(f"{sent} {blocked}\n")
    sock.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
