"""Signatures are the platforms' HMAC-SHA256 (RFC 2104) for a secret of any length, the same
value however many messages one secret signs."""

from __future__ import annotations

import hashlib
import hmac

from oncall.sources._common import hmac_b64, hmac_sha256


def test_hmac_sha256_is_the_standard_hmac_for_any_secret_length_and_message() -> None:
    for length in (0, 1, 31, 63, 64, 65, 128, 500):
        secret = bytes(range(256))[:length] if length <= 256 else b"k" * length
        for message in (b"", b"x", b"t=1700000000." + b"{}" * 700):
            expected = hmac.new(secret, message, hashlib.sha256).digest()
            assert hmac_sha256(secret, message) == expected
            assert hmac_sha256(secret, message) == expected  # the second time, from the cached pads
    assert hmac_b64(b"whsec_test", b"{}") == "Rr3Coug5ZL0mlazGoflxYti6/BNaBxqlzVyZquVIFEA="
