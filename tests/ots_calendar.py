"""A stand-in OpenTimestamps calendar on loopback, speaking the calendar protocol the `ots` client uses."""

from __future__ import annotations

import http.server
import os
import threading

from opentimestamps.core.notary import BitcoinBlockHeaderAttestation, PendingAttestation
from opentimestamps.core.op import OpAppend, OpPrepend, OpSHA256
from opentimestamps.core.serialize import BytesSerializationContext
from opentimestamps.core.timestamp import Timestamp


class Calendar:
    """A stand-in OpenTimestamps calendar: /digest answers a pending proof, /timestamp/<hex> a block once mined."""

    def __init__(self) -> None:
        self.pending: dict[bytes, Timestamp] = {}
        self.mined: dict[bytes, int] = {}
        self.requests: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def mine(self, height: int) -> None:
        """Every digest received so far goes into block `height`."""
        for commitment in self.pending:
            self.mined[commitment] = height

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        calendar = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                calendar.requests.append(f"POST {self.path}")
                digest = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = Timestamp(digest)
                committed = stamp.ops.add(OpAppend(os.urandom(8))).ops.add(OpSHA256())
                committed.attestations.add(PendingAttestation(calendar.url))
                calendar.pending[committed.msg] = committed
                self._answer(200, serialized(stamp))

            def do_GET(self) -> None:
                calendar.requests.append(f"GET {self.path}")
                commitment = bytes.fromhex(self.path.rsplit("/", 1)[-1])
                if commitment not in calendar.mined:
                    self._answer(404, b"Pending confirmation in Bitcoin blockchain")
                    return
                stamp = Timestamp(commitment)
                block = stamp.ops.add(OpPrepend(b"\x01" * 32)).ops.add(OpSHA256())
                block.attestations.add(BitcoinBlockHeaderAttestation(calendar.mined[commitment]))
                self._answer(200, serialized(stamp))

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serialized(stamp: Timestamp) -> bytes:
    context = BytesSerializationContext()
    stamp.serialize(context)
    return context.getbytes()
