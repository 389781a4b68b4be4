"""One TLS configuration for every outbound connection of the kit and the proxy: the kit's client
and its preflight, the Schemathesis phase, and the proxy's upstream.

Company staging servers nearly always sit behind a private CA, so the default is the system's
trust store (through `truststore`, the library pip uses), which honours `SSL_CERT_FILE` and
`SSL_CERT_DIR`; `--ca-bundle PATH` trusts a bundle of one's own instead; `--client-cert` and
`--client-key` present a client certificate (mutual TLS); `--insecure` verifies nothing, and
every report says so in its header. A TLS failure is never the target's fault: `describe`
names the host, the reason (unknown issuer, name mismatch, expired) and the option that fixes
it, and the run ends "could not judge".
"""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass

FIXES = ("--ca-bundle PATH (or SSL_CERT_FILE) to trust the server's CA, --client-cert and "
         "--client-key when it asks for a client certificate, or --insecure to verify nothing")


@dataclass(frozen=True)
class TlsSettings:
    """How to trust servers and how to present oneself; hashable, so a context is built once
    per distinct setting (building one costs ~50 ms of CPU)."""

    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure: bool = False

    def describe(self) -> str:
        """One line for a report's header."""
        if self.insecure:
            trust = "INSECURE: certificates are not verified (--insecure)"
        elif self.ca_bundle:
            trust = f"trusts the CA bundle {self.ca_bundle}"
        else:
            trust = "trusts the system's store" + (
                f" (SSL_CERT_FILE={os.environ['SSL_CERT_FILE']})"
                if os.environ.get("SSL_CERT_FILE") else "")
        client = f"; client certificate {self.client_cert}" if self.client_cert else ""
        return f"TLS: {trust}{client}"


DEFAULT = TlsSettings()


class TlsSetupError(ValueError):
    """A TLS option that cannot be used (a missing or unreadable file): a usage error."""


@functools.cache
def context(settings: TlsSettings = DEFAULT) -> ssl.SSLContext:
    """The SSL context for these settings (one per process and setting)."""
    try:
        if settings.insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif settings.ca_bundle:
            ctx = ssl.create_default_context(cafile=settings.ca_bundle)
        else:
            import truststore

            ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if settings.client_cert:
            ctx.load_cert_chain(settings.client_cert, settings.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot use the TLS options given: {exc}") from None
    return ctx


def ca_file(settings: TlsSettings = DEFAULT) -> str | None:
    """A CA bundle file for tools that take a path, not a context (Schemathesis' requests):
    --ca-bundle, else SSL_CERT_FILE, else the system's bundle; None with --insecure."""
    if settings.insecure:
        return None
    if settings.ca_bundle:
        return settings.ca_bundle
    if os.environ.get("SSL_CERT_FILE"):
        return os.environ["SSL_CERT_FILE"]
    found = ssl.get_default_verify_paths().cafile
    if found and os.path.isfile(found):
        return found
    for candidate in ("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem",
                      "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem"):
        if os.path.isfile(candidate):
            return candidate
    return None


def schemathesis_args(settings: TlsSettings = DEFAULT) -> list[str]:
    """The same TLS configuration as Schemathesis' command-line options."""
    found = ca_file(settings)
    args = ["--tls-verify", "false" if settings.insecure else (found or "true")]
    if settings.client_cert:
        args += ["--request-cert", settings.client_cert]
        if settings.client_key:
            args += ["--request-cert-key", settings.client_key]
    return args


def find_tls_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error under a transport error (httpx wraps it), or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLError):
            return exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def reason(error: ssl.SSLError) -> str:
    """What went wrong, in words: unknown issuer, name mismatch, expired, or OpenSSL's."""
    text = str(getattr(error, "verify_message", "") or error.reason or error)
    low = text.lower()
    if "unable to get local issuer" in low or "self-signed" in low or \
            "self signed" in low or "unknown ca" in low:
        return f"the certificate's issuer is not trusted ({text})"
    if "hostname mismatch" in low or "ip address mismatch" in low or "doesn't match" in low:
        return f"the certificate does not name this host ({text})"
    if "expired" in low or "not yet valid" in low:
        return f"the certificate is outside its validity period ({text})"
    if "certificate required" in low or "alert handshake" in low or "bad certificate" in low:
        return f"the server refused the handshake, probably wanting a client certificate ({text})"
    return text


def describe(host: str, error: ssl.SSLError) -> str:
    """A TLS failure as a user acts on it: the host, the reason, the options that fix it."""
    return f"TLS to {host} failed: {reason(error)}. Use {FIXES}."
