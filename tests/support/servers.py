"""Servers the tests start or talk to over real HTTP: free ports, buckets on moto's S3 server,
plain fetches, and gunicorn as deployed."""

import datetime
import ipaddress
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

from .processes import BASE_DIR

GUNICORN = Path(sys.executable).with_name("gunicorn")
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}  # as the reverse proxy in front of gunicorn sets it
UNVERIFIED = ssl._create_unverified_context()  # noqa: S323 (our own self-signed certificate on 127.0.0.1)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_bucket(endpoint, prefix):
    """A fresh bucket on the moto server: (boto3 client, bucket name)."""
    import boto3

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    return client, name


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url, headers=None, *, follow=True, context=None, timeout=30):
    """(status, headers, body) of a GET; an error status is an answer too, not an exception.
    ``follow=False`` leaves redirects unfollowed; ``context`` is the TLS context."""
    handlers = [urllib.request.HTTPSHandler(context=context)] if context else []
    opener = urllib.request.build_opener(*handlers, *([] if follow else [NoRedirect]))
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def self_signed_certificate(folder):
    """(certificate, key) files in ``folder``: a self-signed certificate for 127.0.0.1, a day long."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@contextmanager
def gunicorn(env, port, output, *options, certificate=None, timeout=60):
    """gunicorn as deployed (``deploy/gunicorn.conf.py``, two workers) on 127.0.0.1:``port`` with the
    settings ``env``, its output to the file ``output``. Yields once ``/ping`` answers, stops it with
    SIGTERM afterwards. With ``certificate`` (cert, key) it speaks TLS itself; else plain HTTP, and
    requests carry the proxy's ``X-Forwarded-Proto`` (without it the site redirects to https)."""
    tls = ["--certfile", str(certificate[0]), "--keyfile", str(certificate[1])] if certificate else []
    command = [GUNICORN, "instrumetriq_site.wsgi", "--config", "deploy/gunicorn.conf.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "2", *options, *tls]
    ping = f"{'https' if certificate else 'http'}://127.0.0.1:{port}/ping"
    with open(output, "w") as out:
        server = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert server.poll() is None, "gunicorn exited while starting"
                try:
                    if fetch(ping, None if certificate else PROXY_HEADERS, context=UNVERIFIED)[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"gunicorn did not answer {ping} within {timeout} s"
                time.sleep(0.2)
            yield server
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
