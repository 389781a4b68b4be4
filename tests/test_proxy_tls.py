"""The validating proxy in front of an HTTPS target with a private CA (made here with trustme):
trusted with --ca-bundle or SSL_CERT_FILE it passes; untrusted, the client gets a 502 naming
the certificate problem and every report keeps it apart from server violations (exit 2, could
not judge); mutual TLS the same way. Real processes on loopback, stopped by their pid.
"""

from __future__ import annotations

import json
import signal
import xml.etree.ElementTree as ET

import httpx
import pytest
import trustme

from tests.support.proxy import start_broken_target, start_proxy

pytestmark = pytest.mark.e2e

NOT_REQUIRED = "cnt_00000000-0000-4000-8000-000000000103"
KEY = {"X-Api-Key": "lp_test_full"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A private CA, a server certificate for 127.0.0.1, and a client certificate (its key in
    a file of its own)."""
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.private_key_and_cert_chain_pem.write_to_path(str(d / "server.pem"))
    client = ca.issue_cert("client.example")
    client.cert_chain_pems[0].write_to_path(str(d / "client.crt"))
    client.private_key_pem.write_to_path(str(d / "client.key"))
    return d


@pytest.fixture(scope="module")
def https_target(pki):
    server = start_broken_target("--certfile", str(pki / "server.pem"),
                                 "--keyfile", str(pki / "server.pem"))
    assert server.url.startswith("https://127.0.0.1:")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_target(pki):
    server = start_broken_target("--certfile", str(pki / "server.pem"),
                                 "--keyfile", str(pki / "server.pem"),
                                 "--client-ca", str(pki / "ca.pem"))
    yield server
    server.stop()


def _passes(target: str, *args: str, env: dict | None = None, tmp_path=None) -> dict:
    """Through a proxy started with ARGS: a valid exchange, no violation, exit 0."""
    report = tmp_path / "ok.json"
    proxy = start_proxy(target, "--report", str(report), *args, env=env)
    try:
        r = httpx.get(proxy.url + f"/v1/content/{NOT_REQUIRED}", headers=KEY, timeout=30)
        assert r.status_code == 200, r.text
        found = httpx.get(proxy.url + "/__proxy/violations", timeout=30).json()
    finally:
        code = proxy.stop(signal.SIGTERM, timeout=60)
    assert code == 0, "".join(proxy.output)
    assert found["transport"]["count"] == 0
    data = json.loads(report.read_text())
    assert data["serverViolations"] == 0 and data["exitStatus"] == 0
    return data


def _transport_failure(target: str, *args: str, tmp_path, env: dict | None = None) -> str:
    """Through a proxy started with ARGS: a 502 in the D5 envelope, a transport failure in
    every report and none of it a server violation, exit 2. The 502's message."""
    out = {s: tmp_path / f"fail.{s}" for s in ("json", "md", "html", "xml")}
    reports = [a for s in ("json", "md", "html") for a in ("--report", str(out[s]))]
    proxy = start_proxy(target, "--junit-xml", str(out["xml"]), *reports, *args, env=env)
    try:
        r = httpx.get(proxy.url + f"/v1/content/{NOT_REQUIRED}", headers=KEY, timeout=30)
        assert r.status_code == 502, r.text
        error = r.json()["error"]
        assert error["code"] == "INTERNAL" and error["requestId"] == r.headers["x-request-id"]
        found = httpx.get(proxy.url + "/__proxy/violations", timeout=30).json()
        assert found["server"] == [] and found["transport"]["count"] == 1, found
    finally:
        code = proxy.stop(signal.SIGTERM, timeout=60)
    assert code == 2, "".join(proxy.output)
    data = json.loads(out["json"].read_text())
    assert data["serverViolations"] == 0 and data["transportFailures"] == 1
    assert data["verdict"] == "could not judge"
    assert all(r["violations"] == 0 for r in data["checks"])
    assert "## Transport failures (not server violations)" in out["md"].read_text()
    assert "Transport failures (not server violations)" in out["html"].read_text()
    suite = ET.parse(out["xml"]).getroot()
    assert suite.get("failures") == "0" and suite.get("errors") == "1"
    assert suite.find("testcase[@name='proxy.transport']/error") is not None
    return error["message"]


def test_trusted_with_ca_bundle_or_ssl_cert_file(https_target, pki, tmp_path):
    data = _passes(https_target.url, "--ca-bundle", str(pki / "ca.pem"), tmp_path=tmp_path)
    assert "trusts the CA bundle" in data["tls"]
    data = _passes(https_target.url, env={"SSL_CERT_FILE": str(pki / "ca.pem")},
                   tmp_path=tmp_path)
    assert "SSL_CERT_FILE" in data["tls"]


def test_untrusted_certificate_is_a_transport_failure_named(https_target, pki, tmp_path):
    message = _transport_failure(https_target.url, tmp_path=tmp_path,
                                 env={"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""})
    assert "TLS to 127.0.0.1 failed" in message and "issuer is not trusted" in message
    assert "--ca-bundle" in message
    data = _passes(https_target.url, "--insecure", tmp_path=tmp_path)
    assert "INSECURE" in data["tls"]


def test_mutual_tls(mtls_target, pki, tmp_path):
    _passes(mtls_target.url, "--ca-bundle", str(pki / "ca.pem"),
            "--client-cert", str(pki / "client.crt"), "--client-key", str(pki / "client.key"),
            tmp_path=tmp_path)
    message = _transport_failure(mtls_target.url, "--ca-bundle", str(pki / "ca.pem"),
                                 tmp_path=tmp_path)
    assert "client certificate" in message or "--client-cert" in message, message


def test_tls_options_that_cannot_be_used_are_usage_errors(tmp_path):
    from layers_kit.conformance.cli import main

    assert main(["proxy", "--target", "https://127.0.0.1:1",
                 "--ca-bundle", str(tmp_path / "missing.pem")]) == 2
    assert main(["proxy", "--target", "https://127.0.0.1:1",
                 "--client-key", str(tmp_path / "k.pem")]) == 2
