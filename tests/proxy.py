"""A loopback TCP proxy that can drop its connections, like a flaky network.

It forwards bytes both ways and, when told, cuts every connection once a
given number of client bytes has passed, so a client sees its upload fail
midway exactly where the test wants it to.
"""

from __future__ import annotations

import socket
import threading


class CuttingProxy:
    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._budget: int | None = None
        self._once = False
        self._lock = threading.Lock()
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, client_bytes: int | None, once: bool = False) -> None:
        """Drop connections once ``client_bytes`` more bytes went upstream (None: never).

        With ``once``, only the connection that crosses the budget is dropped.
        """
        with self._lock:
            self._budget = client_bytes
            self._once = once

    def _spend(self, amount: int) -> int:
        """How much of ``amount`` may still pass; less than ``amount`` means cut now."""
        with self._lock:
            if self._budget is None:
                return amount
            allowed = min(amount, self._budget)
            self._budget = None if allowed < amount and self._once else self._budget - allowed
            return allowed

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, metered: bool) -> None:
        try:
            while data := source.recv(65536):
                allowed = self._spend(len(data)) if metered else len(data)
                sink.sendall(data[:allowed])
                if allowed < len(data):
                    with self._lock:
                        self.cuts += 1
                    break
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self._listener.close()
