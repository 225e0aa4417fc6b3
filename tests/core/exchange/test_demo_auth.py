"""Binance's signed-request check in the demo exchange: the reference vector and every refusal."""

import pytest

from core.exchange.demo.auth import sign, verify
from core.exchange.demo.errors import BinanceError

SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
PAYLOAD = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
    "&recvWindow=5000&timestamp=1591702613943"
)
SIGNATURE = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
TIMESTAMP = 1591702613943
KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRETS = {KEY: SECRET}
HEADERS = {"X-MBX-APIKEY": KEY}


def _refusal(**kwargs) -> tuple[int, int]:
    args = {"headers": HEADERS, "raw_query": "", "raw_body": "", "secrets": SECRETS,
            "now_ms": TIMESTAMP + 10}  # fmt: skip
    with pytest.raises(BinanceError) as caught:
        verify(**{**args, **kwargs})
    return caught.value.status, caught.value.code


def test_sign_matches_binance_reference_vector():
    assert sign(SECRET, PAYLOAD) == SIGNATURE


def test_verify_accepts_the_vector_in_the_query_string():
    query = f"{PAYLOAD}&signature={SIGNATURE}"
    key, params = verify(HEADERS, query, "", SECRETS, TIMESTAMP + 10)
    assert key == KEY
    assert params["symbol"] == "BTCUSDT" and params["price"] == "9000"
    assert "signature" not in params


def test_verify_signs_query_followed_by_form_body():
    # Binance's mixed example: the payload is the query string directly followed by the body.
    query, body = (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC",
        ("quantity=1&price=9000&recvWindow=5000&timestamp=1591702613943"),
    )
    signature = sign(SECRET, query + body)
    _, params = verify(HEADERS, query, f"{body}&signature={signature}", SECRETS, TIMESTAMP)
    assert params["quantity"] == "1" and params["timeInForce"] == "GTC"


def test_tampered_payload_or_signature_is_minus_1022():
    tampered = PAYLOAD.replace("price=9000", "price=9001") + f"&signature={SIGNATURE}"
    assert _refusal(raw_query=tampered) == (400, -1022)
    wrong = PAYLOAD + "&signature=" + sign("other-secret", PAYLOAD)
    assert _refusal(raw_query=wrong) == (400, -1022)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, (401, -2014)),
        ({"X-MBX-APIKEY": "bad key with spaces"}, (401, -2014)),
        ({"X-MBX-APIKEY": "unknownKey123"}, (401, -2015)),
    ],
)
def test_missing_malformed_or_unknown_api_key_is_refused_with_401(headers, expected):
    assert _refusal(headers=headers, raw_query=f"{PAYLOAD}&signature={SIGNATURE}") == expected


@pytest.mark.parametrize(
    ("now_offset", "window", "ok"),
    [
        (5_000, None, True),  # default recvWindow 5000: exactly at its edge
        (5_001, None, False),
        (59_000, 60_000, True),
        (-999, None, True),  # up to 1 s ahead of the server
        (-1_000, None, False),
    ],
)
def test_timestamp_must_fall_inside_recv_window(now_offset, window, ok):
    payload = f"symbol=BTCUSDT&timestamp={TIMESTAMP}"
    if window is not None:
        payload += f"&recvWindow={window}"
    query = f"{payload}&signature={sign(SECRET, payload)}"
    now = TIMESTAMP + now_offset
    if ok:
        assert verify(HEADERS, query, "", SECRETS, now)[0] == KEY
    else:
        assert _refusal(raw_query=query, now_ms=now) == (400, -1021)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("symbol=BTCUSDT", -1102),  # no timestamp
        ("timestamp=15917026x3943", -1100),
        (f"timestamp={TIMESTAMP}&recvWindow=60001", -1131),
    ],
)
def test_bad_timestamp_parameters_get_binance_codes(payload, code):
    assert _refusal(raw_query=f"{payload}&signature={sign(SECRET, payload)}") == (400, code)


def test_missing_signature_is_minus_1102():
    assert _refusal(raw_query=f"timestamp={TIMESTAMP}") == (400, -1102)
