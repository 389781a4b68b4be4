"""The kit on a partner's real staging, as shapes of it are made here: HTTPS behind a private CA
(and mutual TLS), a network that resets connections, minimal keys, CI gating (D10).

Each test runs the real `layers-conformance` process (or the runner, where a test needs the
verdicts themselves) against the real mock behind a TCP forwarder on loopback
(tests/support/tcp_proxy.py).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest
import trustme

from layers_kit.conformance import bundled
from layers_kit.conformance.runner import run
from layers_kit.conformance.target import Target
from layers_kit.conformance.verdicts import FAILED
from tests.support import ids
from tests.support.process import start_mock
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

NO_ENV = ("LAYERS_API_KEY", "LAYERS_BASE_URL", "LAYERS_CA_BUNDLE", "LAYERS_CLIENT_CERT",
          "LAYERS_CLIENT_KEY", "LAYERS_PROJECT_ID")


@pytest.fixture(scope="module")
def mock():
    m = start_mock("--stage-seconds", "0.05")
    yield m
    assert m.stop() == 0, "".join(m.output)


def _port(url: str) -> int:
    return urlsplit(url).port


def kit(*args: str, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in NO_ENV}
    return subprocess.run([sys.executable, "-m", "layers_kit.conformance", "run", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**clean, **(env or {})})


# ---- HTTPS with a private CA ---------------------------------------------------------------

@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> dict[str, object]:
    """A throwaway CA, a server certificate for 127.0.0.1, and a client certificate."""
    authority = trustme.CA()
    folder = tmp_path_factory.mktemp("pki")
    authority.cert_pem.write_to_path(str(folder / "ca.pem"))
    client = authority.issue_cert("partner-ci@example.test")
    client.private_key_and_cert_chain_pem.write_to_path(str(folder / "client.pem"))
    return {"ca": authority, "ca_pem": folder / "ca.pem", "client_pem": folder / "client.pem",
            "server": authority.issue_cert("127.0.0.1", "localhost")}


def _https(mock, ca, *, mutual: bool = False) -> TcpProxy:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca["server"].configure_cert(ctx)
    if mutual:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ca["ca"].configure_trust(ctx)
    return TcpProxy(_port(mock.url), tls=ctx)


RULE_ARGS = ("--container-id", ids.CNT_NOT_REQUIRED, "--only", "R1", "--no-schemathesis")


def test_https_with_a_private_ca_passes_with_ca_bundle_or_ssl_cert_file(mock, ca, tmp_path):
    front = _https(mock, ca)
    try:
        base = ("--base-url", front.url, "--api-key", ids.FULL, *RULE_ARGS)
        out = kit(*base, "--ca-bundle", str(ca["ca_pem"]),
                  "--report", str(tmp_path / "r.json"))
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        report = json.loads((tmp_path / "r.json").read_text())
        assert "trusts the CA bundle" in report["tls"] and report["insecure"] is False
        out = kit(*base, env={"SSL_CERT_FILE": str(ca["ca_pem"])})
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        # without either: "could not judge" (2), naming the certificate problem and the fix
        out = kit(*base, env={"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"})
        assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
        assert "issuer is not trusted" in out.stderr and "127.0.0.1" in out.stderr
        assert "--ca-bundle" in out.stderr and "Traceback" not in out.stderr
        # --insecure: verified nothing, and every report says so
        out = kit(*base, "--insecure", "--report", str(tmp_path / "i.md"),
                  "--junit-xml", str(tmp_path / "i.xml"))
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        assert "INSECURE" in (tmp_path / "i.md").read_text()
        assert "INSECURE" in (tmp_path / "i.xml").read_text()
        assert "--insecure: no certificate was verified" in out.stdout
    finally:
        front.close()


def test_mutual_tls_passes_with_a_client_certificate_and_is_no_target_fault_without(
        mock, ca):
    front = _https(mock, ca, mutual=True)
    try:
        base = ("--base-url", front.url, "--api-key", ids.FULL, "--ca-bundle",
                str(ca["ca_pem"]), *RULE_ARGS)
        out = kit(*base, "--client-cert", str(ca["client_pem"]))
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        out = kit(*base)
        assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
        assert "127.0.0.1" in out.stderr and "--client-cert" in out.stderr
        assert "Traceback" not in out.stderr
    finally:
        front.close()


# ---- a network that resets connections ------------------------------------------------------

def test_connection_resets_never_fail_a_correct_target(tmp_path):
    """15 % of the connections reset (seeded) between the kit and a correct mock: no check
    fails, in the checks or in the Schemathesis phase; what could not be judged says so, and
    the run exits 0 or 2, never 1."""
    m = start_mock(*bundled.MOCK_ARGS)
    front = TcpProxy(_port(m.url), reset_share=0.15, seed=7)
    try:
        target = bundled.target_for(front.url)
        result = run(target, profile="quick", jobs=4)
    finally:
        front.close()
        assert m.stop() == 0, "".join(m.output)
    assert sum(front.counts[k] for k in ("at-once", "after-request", "mid-answer")) >= 5, \
        front.counts  # the network really misbehaved
    failed = [(o.rule, o.name, o.message) for o in result.outcomes if o.status == FAILED]
    assert failed == [], failed
    assert result.exit_code in (0, 2)
    for o in result.transport_trouble:
        assert o.status == "inconclusive" and "answer" in o.message


def test_the_proxy_keeps_a_flaky_network_apart_from_server_violations(tmp_path):
    """The validating proxy in front of the same flaky path: transport failures are counted
    apart, never as server violations, and the run does not exit 1."""
    from tests.support.proxy import start_proxy

    m = start_mock("--stage-seconds", "0.05")
    front = TcpProxy(_port(m.url), reset_share=0.3, seed=3)
    proxy = start_proxy(front.url, "--report", str(tmp_path / "proxy.json"))
    try:
        with httpx.Client(base_url=proxy.url, headers={"X-Api-Key": ids.FULL},
                          timeout=30) as c:
            for i in range(40):
                c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}")
                c.post(f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate", json={},
                       headers={"Idempotency-Key": f"k-{i}"})
    finally:
        code = proxy.stop()
        front.close()
        assert m.stop() == 0, "".join(m.output)
    data = json.loads((tmp_path / "proxy.json").read_text())
    assert data["serverViolations"] == 0, data
    assert code in (0, 2) and data["exitStatus"] == code
    assert front.counts["pipe"] and sum(front.counts.values()) > front.counts["pipe"]


def test_no_post_a_default_run_leaves_is_due_within_a_year(tmp_path):
    """On a target where scheduling succeeds (containers that need no approval), every post
    the run created, by the checks and by the Schemathesis phase, is dated a year ahead."""
    import datetime as dt

    m = start_mock(*bundled.MOCK_ARGS)
    started = dt.datetime.now(dt.UTC)
    try:
        result = run(bundled.target_for(m.url), profile="quick", jobs=4)
        assert result.exit_code == 0, [(o.name, o.message) for o in result.outcomes
                                       if o.status == FAILED]
        created = result.created["scheduledPosts"]
        with httpx.Client(base_url=m.url, headers={"X-Api-Key": ids.FULL}, timeout=30) as c:
            posts = [c.get(f"/v1/scheduled-posts/{pid}").json() for pid in created]
    finally:
        assert m.stop() == 0, "".join(m.output)
    assert len(posts) >= 2 and all("scheduledFor" in p for p in posts), posts
    assert set(result.schema.created["scheduledPosts"]) - set(
        result.observations.created["scheduledPosts"]), "the phase's posts are listed too"
    due = [p for p in posts if dt.datetime.fromisoformat(p["scheduledFor"]) <
           started + dt.timedelta(days=365)]
    assert due == [], due


# ---- --plan, --fail-on, keys from the environment ---------------------------------------------

def test_plan_sends_nothing(mock):
    with httpx.Client(base_url=mock.url) as c:
        c.post("/__mock/reset", json={}).raise_for_status()
        out = kit("--base-url", mock.url, "--project-id", ids.PRJ_AUTO, "--plan",
                  env={"LAYERS_API_KEY": ids.FULL})
        assert out.returncode == 0, out.stderr
        assert "would run" in out.stdout and "would not run" in out.stdout
        assert "--readonly-key" in out.stdout and "containers" in out.stdout
        journal = c.get("/__mock/requests").json()
    entries = journal.get("requests", journal) if isinstance(journal, dict) else journal
    assert [e for e in entries if "/v1/" in json.dumps(e)] == [], entries[:3]


def test_fail_on_not_run_names_the_options_that_would_run_them(mock, tmp_path):
    """The README's CI fragment passes two keys: the tenancy, billing and moderation checks do
    not run. With --fail-on not-run the job goes red and says which options would run them."""
    args = ("--base-url", mock.url, "--project-id", ids.PRJ_AUTO, "--only", "R12",
            "--no-schemathesis")
    env = {"LAYERS_API_KEY": ids.FULL, "LAYERS_READONLY_KEY": ids.READONLY}
    out = kit(*args, env=env)
    assert out.returncode == 0, out.stdout[-2000:]
    assert "did not run; the options that would run them" in out.stdout
    out = kit(*args, "--fail-on", "failed,not-run", "--report", str(tmp_path / "r.json"),
              env=env)
    assert out.returncode == 2, out.stdout[-2000:]
    for option in ("--other-org-key", "--broke-key", "--moderation-text"):
        assert option in out.stdout, option
    assert "Exit status 2" in out.stdout and "--fail-on failed,not-run" in out.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["exitCode"] == 2 and report["failOn"] == ["failed", "not-run"]
    assert kit(*args, "--fail-on", "nonsense", env=env).returncode == 2


def test_the_python_api_reads_keys_and_ids_from_the_environment(mock):
    env = {"LAYERS_BASE_URL": mock.url, "LAYERS_API_KEY": ids.FULL,
           "LAYERS_PROJECT_ID": ids.PRJ_AUTO}
    target = Target.from_env(env)
    assert (target.base_url, target.api_key, target.project_id) == (
        mock.url, ids.FULL, ids.PRJ_AUTO)
    assert Target.from_env(env, api_key="given").api_key == "given"
    with pytest.raises(ValueError, match="LAYERS_API_KEY"):
        Target.from_env({})


def test_reports_list_what_the_run_created(mock, tmp_path):
    out = kit("--base-url", mock.url, "--project-id", ids.PRJ_AUTO, "--only", "R1",
              "--no-schemathesis", "--report", str(tmp_path / "r.json"),
              "--report", str(tmp_path / "r.md"), env={"LAYERS_API_KEY": ids.FULL})
    assert out.returncode == 0, out.stdout[-2000:]
    created = json.loads((tmp_path / "r.json").read_text())["created"]
    assert created["containers"] and created["jobs"], created
    assert all(c.startswith("cnt_") for c in created["containers"])
    md = (tmp_path / "r.md").read_text()
    assert "What this run created" in md and created["jobs"][0] in md
