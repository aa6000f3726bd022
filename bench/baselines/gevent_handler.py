#!/usr/bin/python3
"""What Brubeck users run today: a Mongrel2 handler on gevent + pyzmq
(zmq.green), one greenlet per request, as Brubeck's own loop does.

    /usr/bin/python3 bench/baselines/gevent_handler.py SEND_SPEC RECV_SPEC

PULLs requests from Mongrel2's send_spec, PUBlishes replies to its recv_spec.
Each request is parsed as Brubeck parses it (sender, conn id, path, netstring
headers decoded with json, or as a tnetstring dict under Mongrel2's
protocol='tnetstring', the body netstring), its query string decoded,
and answered "Take five, NAME!" (NAME from ?name=, default "dude"), the body
of the brubeck demo's /brubeck route. Disconnect notices are not answered.
Debian's python3-gevent and python3-zmq: run it with /usr/bin/python3.
Exits on SIGINT/SIGTERM.
"""

import json
import signal
import sys
from urllib.parse import parse_qs

import gevent
import zmq.green as zmq


def parse_netstring(data):
    """Returns (payload, tag, rest) of a netstring at the start of `data`."""
    length, rest = data.split(b":", 1)
    length = int(length)
    tag = rest[length : length + 1]
    if tag not in (b",", b"}", b"]"):
        raise ValueError("netstring not terminated")
    return rest[:length], tag, rest[length + 1 :]


def parse_tnetstring_dict(data):
    """Mongrel2's protocol='tnetstring' headers: string keys, values strings
    or lists of strings."""
    headers = {}
    while data:
        key, _, data = parse_netstring(data)
        value, tag, data = parse_netstring(data)
        if tag == b"]":
            items = []
            while value:
                item, _, value = parse_netstring(value)
                items.append(item.decode("utf-8", "replace"))
            headers[key.decode("utf-8", "replace")] = items
        else:
            headers[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return headers


def parse_request(msg):
    sender, conn_id, path, rest = msg.split(b" ", 3)
    headers, tag, rest = parse_netstring(rest)
    body, _, _ = parse_netstring(rest)
    parsed = parse_tnetstring_dict(headers) if tag == b"}" else json.loads(headers)
    return sender, conn_id, path, parsed, body


def http_response(body, code=200, status="OK"):
    payload = body.encode("utf-8")
    head = "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n" % (
        code,
        status,
        len(payload),
    )
    return head.encode("ascii") + payload


class Handler(object):
    def __init__(self, send_spec, recv_spec):
        self.ctx = zmq.Context()
        self.pull = self.ctx.socket(zmq.PULL)
        self.pub = self.ctx.socket(zmq.PUB)
        self.pull.setsockopt(zmq.LINGER, 0)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.setsockopt(zmq.SNDHWM, 100000)
        self.pull.connect(send_spec)
        self.pub.connect(recv_spec)
        self.replies = 0

    def reply(self, sender, conn_id, data):
        self.pub.send(b"%s %d:%s, %s" % (sender, len(conn_id), conn_id, data))
        self.replies += 1

    def handle(self, msg):
        try:
            sender, conn_id, path, headers, body = parse_request(msg)
        except ValueError:
            return  # not a Mongrel2 frame
        if headers.get("METHOD") == "JSON":
            return  # disconnect or socket message: never answered
        args = parse_qs(headers.get("QUERY", ""))
        name = args.get("name", ["dude"])[0]
        self.reply(sender, conn_id, http_response("Take five, %s!" % name))

    def run(self):
        while True:
            msg = self.pull.recv()
            gevent.spawn(self.handle, msg)

    def close(self):
        self.pull.close()
        self.pub.close()
        self.ctx.term()


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: %s SEND_SPEC RECV_SPEC\n" % sys.argv[0])
        return 2
    handler = Handler(sys.argv[1], sys.argv[2])
    loop = gevent.spawn(handler.run)
    stop = lambda: loop.kill(block=False)
    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    loop.join()
    sys.stderr.write("gevent_handler: exiting after %d replies\n" % handler.replies)
    handler.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
