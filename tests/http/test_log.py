"""The server's log: libmicrohttpd's own messages go through the JSON log,
and a client that drops an event stream is not logged as an error."""
import json
import socket
import time

from conftest import LONG_RUN


def test_dropped_event_streams_are_not_errors(start_server):
    srv = start_server()
    c = srv.client
    run = c.create_run(LONG_RUN)
    c.wait_for_run(run["id"], "running", timeout=30)
    host, port = "127.0.0.1", srv.port
    for _ in range(10):
        # read a little of the stream, then reset the connection
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(f"GET /runs/{run['id']}/events HTTP/1.1\r\n"
                     f"Host: {host}\r\n\r\n".encode())
        sock.recv(512)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        time.sleep(0.1)
    c.cancel(run["id"])
    c.wait_for_run(run["id"], "cancelled", timeout=30)
    assert c.get("/healthz").status_code == 200
    log = srv.stderr()
    assert "Failed to send" not in log, log[-2000:]
    # and the log is still JSON lines (MHD's own messages included)
    for line in log.splitlines():
        if line.startswith("{"):
            json.loads(line)
