"""A real RFC 3161 time-stamping authority on loopback for the tests: a throwaway CA and `openssl ts -reply`.

`TimeStampingAuthority` makes a root CA and a TSA certificate (critical extended key usage
timeStamping, as RFC 3161 requires) and answers POSTed time-stamp queries over HTTP by running
the openssl command line on them, as a small authority's responder does. Variants give the faults
a client must refuse: a certificate that had expired before the stamp, a CA nobody trusts, an
authority that stamps another hash than the one it was asked for.
"""

from __future__ import annotations

import datetime
import http.server
import subprocess
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CONFIG = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = {folder}/serial
crypto_device = builtin
signer_cert = {folder}/tsa.pem
certs = {folder}/ca.pem
signer_key = {folder}/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.4146.2.3
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class TimeStampingAuthority:
    def __init__(self, name: str = "Test TSA", *, expired: bool = False, stamps_other_hash: bool = False) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tsa-"))
        self.stamps_other_hash = stamps_other_hash
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name} Root CA"))
            .issuer_name(_name(f"{name} Root CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        tsa_key = ec.generate_private_key(ec.SECP256R1())
        # An expired certificate stopped being valid a day before any stamp it signs now.
        valid_until = now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=365)
        tsa_certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.ca_certificate.subject)
            .public_key(tsa_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=10))
            .not_valid_after(valid_until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        (self.folder / "ca.pem").write_bytes(self.ca_certificate.public_bytes(serialization.Encoding.PEM))
        (self.folder / "tsa.pem").write_bytes(tsa_certificate.public_bytes(serialization.Encoding.PEM))
        (self.folder / "tsa.key").write_bytes(_pem(tsa_key))
        (self.folder / "serial").write_text("01\n")
        (self.folder / "ts.cnf").write_text(CONFIG.format(folder=self.folder))
        self.ca_file = self.folder / "ca.pem"
        self._lock = threading.Lock()
        self.requests = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsr"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, query: bytes) -> bytes:
        """`openssl ts -reply` on the query (or, for the faulty variant, on a query for another hash)."""
        with self._lock:  # openssl increments the serial file
            self.requests += 1
            if self.stamps_other_hash:
                query = subprocess.run(
                    ["openssl", "ts", "-query", "-digest", "ab" * 32, "-sha256", "-cert"],
                    check=True, capture_output=True,
                ).stdout  # fmt: skip
            (self.folder / "query.tsq").write_bytes(query)
            subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(self.folder / "ts.cnf"),
                 "-queryfile", str(self.folder / "query.tsq"), "-out", str(self.folder / "reply.tsr")],
                check=True, capture_output=True,
            )  # fmt: skip
            return (self.folder / "reply.tsr").read_bytes()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        authority = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers["Content-Length"]))
                body = authority.reply(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def stop(self) -> None:
        """The authority goes down: its port refuses connections from now on."""
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """The address of an authority that is down."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsr"
