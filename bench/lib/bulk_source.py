"""The byte source of bench/egress: on each connection, reads a decimal count and a
newline, sends that many bytes (zeros) and closes. One thread per connection.

    bulk_source.py PORT         listens on 127.0.0.1:PORT until killed

Standard library only. The copying is the kernel's: each send hands it 1 MiB.
"""

import socket
import socketserver
import sys

CHUNK = memoryview(bytes(1 << 20))
MAX = 1 << 40  # a bound on what one connection may ask for


class Source(socketserver.BaseRequestHandler):
    def handle(self):
        line = b""
        while not line.endswith(b"\n") and len(line) < 32:
            got = self.request.recv(32 - len(line))
            if not got:
                return
            line += got
        try:
            left = min(int(line), MAX)
        except ValueError:
            return
        while left > 0:
            n = min(left, len(CHUNK))
            self.request.sendall(CHUNK[:n])
            left -= n
        self.request.shutdown(socket.SHUT_WR)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with Server(("127.0.0.1", int(argv[1])), Source) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
