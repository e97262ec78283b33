"""Runs the test identity provider as its own process: migrate, then Django's server on a free
port; `people()` registers the client and sets people's groups in its database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class IdentityProvider:
    def __init__(self, directory: Path) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
            "PYTHONPATH": str(ROOT),
            "OIDC_PROVIDER_DB": str(directory / "provider.sqlite3"),
            "OIDC_PROVIDER_KEY": pem,
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.url}/o"
        self.log = (directory / "provider.log").open("w")
        self.process: subprocess.Popen | None = None

    def _django(self, *args: str, stdin: str | None = None) -> None:
        subprocess.run(
            [sys.executable, *args],
            env=self.env,
            cwd=ROOT,
            input=stdin,
            text=True,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self._django("-m", "django", "migrate", "--no-input")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                discovery = f"{self.issuer}/.well-known/openid-configuration"
                with urllib.request.urlopen(discovery):  # noqa: S310 - our own http URL
                    return
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the identity provider did not start (log: {self.log.name})"
                    ) from exc
                time.sleep(0.2)

    def people(self, *, client: dict | None = None, people: list[dict] = ()) -> None:
        spec = json.dumps({"client": client, "people": list(people)})
        self._django("-m", "tests.oidc_provider.people", stdin=spec)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
