"""Webhook authentication, each exactly as its provider specifies it. Pure: the caller
passes the clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import unquote

HUBSPOT_MAX_AGE_MS = 5 * 60 * 1000
# HubSpot v3: these percent-encodings in the URI are decoded before signing; others stay.
_HUBSPOT_DECODED = ("%3A", "%2F", "%3F", "%40", "%21", "%24", "%27", "%28", "%29", "%2A",
                    "%2C", "%3B")  # fmt: skip


class SignatureError(ValueError):
    """The request is not authentic (or too old): refuse it, read nothing."""


def hubspot_v3_uri(uri: str) -> str:
    for encoded in _HUBSPOT_DECODED:
        uri = uri.replace(encoded, unquote(encoded)).replace(encoded.lower(), unquote(encoded))
    return uri


def verify_hubspot_v3(
    *,
    client_secret: str,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now_ms: int,
) -> None:
    """``X-HubSpot-Signature-v3``: base64(HMAC-SHA256(secret, method + uri + body +
    timestamp)); a ``X-HubSpot-Request-Timestamp`` older than five minutes is refused."""
    if not signature or not timestamp:
        raise SignatureError("X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp required")
    try:
        sent_ms = int(timestamp)
    except ValueError:
        raise SignatureError("X-HubSpot-Request-Timestamp is not a number") from None
    if now_ms - sent_ms > HUBSPOT_MAX_AGE_MS:
        raise SignatureError("X-HubSpot-Request-Timestamp is older than 5 minutes")
    source = method.upper().encode() + hubspot_v3_uri(uri).encode() + body + timestamp.encode()
    expected = base64.b64encode(
        hmac.new(client_secret.encode(), source, hashlib.sha256).digest()
    ).decode()
    if not hmac.compare_digest(expected, signature.strip()):
        raise SignatureError("X-HubSpot-Signature-v3 does not match")


def hubspot_v2_signature(*, client_secret: str, method: str, uri: str, body: bytes) -> str:
    source = client_secret.encode() + method.upper().encode() + uri.encode() + body
    return hashlib.sha256(source).hexdigest()


def verify_hubspot_v2(
    *, client_secret: str, method: str, uri: str, body: bytes, signature: str | None
) -> None:
    """``X-HubSpot-Signature`` with ``X-HubSpot-Signature-Version: v2`` (older apps):
    hex(SHA-256(secret + method + uri + body)). It carries no timestamp."""
    if not signature:
        raise SignatureError("X-HubSpot-Signature required")
    expected = hubspot_v2_signature(client_secret=client_secret, method=method, uri=uri, body=body)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise SignatureError("X-HubSpot-Signature does not match")


def _standard_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode()


def standard_webhooks_signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_standard_webhooks(
    *,
    secret: str,
    msg_id: str | None,
    timestamp: str | None,
    signatures: str | None,
    body: bytes,
    now_s: int,
    tolerance_s: int = 300,
) -> None:
    """Standard Webhooks: ``webhook-signature`` holds space-separated ``v1,<base64>``
    HMAC-SHA256 of ``id.timestamp.body`` (key: base64 after ``whsec_``); timestamps more
    than the tolerance away from now, either way, are refused."""
    if not msg_id or not timestamp or not signatures:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    if abs(now_s - sent) > tolerance_s:
        raise SignatureError("webhook-timestamp is too old or too new")
    expected = standard_webhooks_signature(
        secret=secret, msg_id=msg_id, timestamp=sent, body=body
    ).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value):
            return
    raise SignatureError("no webhook-signature matches")


def verify_basic_auth(*, header: str | None, username: str, password: str) -> None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise SignatureError("HTTP basic authentication required")
    try:
        given_user, _, given_password = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("malformed basic authentication") from None
    user_ok = hmac.compare_digest(given_user.encode(), username.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise SignatureError("wrong user name or password")
