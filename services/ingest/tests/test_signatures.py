"""Signature checks against the examples in each provider's own documentation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.domain import crm
from services.ingest.domain.signatures import (
    SignatureError,
    hubspot_v2_signature,
    hubspot_v3_uri,
    standard_webhooks_signature,
    verify_basic_auth,
    verify_hubspot_v2,
    verify_hubspot_v3,
    verify_standard_webhooks,
)

# HubSpot's documentation, "v2 request validation": a GET with no body.
HUBSPOT_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
HUBSPOT_V2_GET = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
# The Standard Webhooks specification's example.
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_hubspot_v2_matches_the_documented_example() -> None:
    uri = "https://www.example.com/webhook_uri"
    assert hubspot_v2_signature(client_secret=HUBSPOT_SECRET, method="GET", uri=uri, body=b"") == (
        HUBSPOT_V2_GET
    )
    verify_hubspot_v2(
        client_secret=HUBSPOT_SECRET, method="GET", uri=uri, body=b"", signature=HUBSPOT_V2_GET
    )
    with pytest.raises(SignatureError):
        verify_hubspot_v2(
            client_secret="wrong", method="GET", uri=uri, body=b"", signature=HUBSPOT_V2_GET
        )


def test_hubspot_v3_decodes_the_listed_characters_only() -> None:
    assert hubspot_v3_uri("https://a.com/p%3Ax?e=a%40b.com&x=%20") == (
        "https://a.com/p:x?e=a@b.com&x=%20"
    )


def _v3(body: bytes, timestamp: int, secret: str = HUBSPOT_SECRET) -> str:
    import base64
    import hashlib
    import hmac

    source = (
        b"POST" + b"https://ingest.example/v1/webhooks/hubspot" + body + str(timestamp).encode()
    )
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize(
    ("age_ms", "body", "secret", "ok"),
    [
        (1_000, b'{"vid": 1}', HUBSPOT_SECRET, True),
        (299_000, b'{"vid": 1}', HUBSPOT_SECRET, True),
        (301_000, b'{"vid": 1}', HUBSPOT_SECRET, False),  # stale
        (1_000, b'{"vid": 2}', HUBSPOT_SECRET, False),  # tampered body
        (1_000, b'{"vid": 1}', "another-secret", False),  # wrong secret
    ],
)
def test_hubspot_v3(age_ms: int, body: bytes, secret: str, ok: bool) -> None:
    now = 1_700_000_000_000
    sent = now - age_ms
    signature = _v3(b'{"vid": 1}', sent, secret)

    def check() -> None:
        verify_hubspot_v3(
            client_secret=HUBSPOT_SECRET,
            method="POST",
            uri="https://ingest.example/v1/webhooks/hubspot",
            body=body,
            timestamp=str(sent),
            signature=signature,
            now_ms=now,
        )

    if ok:
        check()
    else:
        with pytest.raises(SignatureError):
            check()


def test_standard_webhooks_matches_the_specification_example() -> None:
    assert (
        standard_webhooks_signature(
            secret=SW_SECRET, msg_id=SW_ID, timestamp=SW_TIMESTAMP, body=SW_BODY
        )
        == SW_SIGNATURE
    )
    verify_standard_webhooks(
        secret=SW_SECRET,
        msg_id=SW_ID,
        timestamp=str(SW_TIMESTAMP),
        signatures=f"v1,bm90IHRoaXMgb25l {SW_SIGNATURE}",  # one of several may match
        body=SW_BODY,
        now_s=SW_TIMESTAMP + 10,
    )


@pytest.mark.parametrize(
    ("body", "secret", "now", "message"),
    [
        (b'{"test": 2432232315}', SW_SECRET, SW_TIMESTAMP, "no webhook-signature"),
        (SW_BODY, "whsec_" + "QUJD" * 8, SW_TIMESTAMP, "no webhook-signature"),
        (SW_BODY, SW_SECRET, SW_TIMESTAMP + 301, "too old"),
        (SW_BODY, SW_SECRET, SW_TIMESTAMP - 301, "too new"),
    ],
)
def test_standard_webhooks_refusals(body: bytes, secret: str, now: int, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_standard_webhooks(
            secret=secret,
            msg_id=SW_ID,
            timestamp=str(SW_TIMESTAMP),
            signatures=SW_SIGNATURE,
            body=body,
            now_s=now,
        )


def test_basic_auth() -> None:
    # RFC 7617's example credentials: Aladdin / open sesame.
    header = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    verify_basic_auth(header=header, username="Aladdin", password="open sesame")
    for bad in (None, "Bearer x", "Basic !!!", header):
        with pytest.raises(SignatureError):
            verify_basic_auth(header=bad, username="Aladdin", password="closed")


@pytest.mark.parametrize(
    ("version", "applied", "superseded"),
    [
        (datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 2, 11, tzinfo=UTC), True),
        (datetime(2026, 3, 2, 11, tzinfo=UTC), datetime(2026, 3, 2, 9, tzinfo=UTC), False),
        (datetime(2026, 3, 2, 11, tzinfo=UTC), datetime(2026, 3, 2, 11, tzinfo=UTC), False),
        (None, datetime(2026, 3, 2, 11, tzinfo=UTC), False),
        (datetime(2026, 3, 2, 9, tzinfo=UTC), None, False),
        (None, None, False),
    ],
)
def test_an_older_crm_version_is_superseded(
    version: datetime | None, applied: datetime | None, superseded: bool
) -> None:
    assert crm.is_superseded(version, applied) is superseded
