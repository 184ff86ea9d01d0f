"""A local TCP port that refuses connections until told to forward them to a real server.

Tests use it for a database or broker that is down when the services start and comes up
later, without stopping the shared server everyone else is using.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

__all__ = ["PortForwarder"]


class PortForwarder:
    """A local TCP port that is closed until :meth:`open` and then forwards to ``target``.

    It stands for a database or broker that is down when the services start and comes up
    later: connections are refused while it is closed, as by a server that is not there.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def open(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, daemon=True, name="forwarder").start()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pipe, args=(source, sink), daemon=True, name="pipe"
                ).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed.set()
        if self._server is not None:
            with suppress(OSError):
                self._server.close()
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.close()
            self._sockets.clear()
