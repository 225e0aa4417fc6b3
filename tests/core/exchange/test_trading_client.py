"""The trading client over real sockets: error mapping, the clock, and one order per intent.

Two servers: a scripted stub speaking Binance's wire format on 127.0.0.1 (it can lose answers
and fail exactly when a test needs it to), and the real demo exchange with its order faults.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from config.settings import DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET, settings_from_mapping
from core.errors import (
    AuthenticationError,
    ExchangeError,
    InsufficientMarginError,
    ListenKeyError,
    OrderRejectedError,
    OutcomeUnknownError,
    PostOnlyRejectedError,
    RateLimitedError,
    ReduceOnlyRejectedError,
    TimestampError,
    UnknownOrderError,
    WouldTriggerError,
)
from core.exchange.binance_errors import map_error, scrub
from core.exchange.demo import DemoExchangeThread, DemoOptions
from core.exchange.order_limits import OrderRateLimiter
from core.exchange.order_requests import AlgoOrderRequest, OrderRequest, client_order_id
from core.exchange.trading import TradingClient, trading_client
from core.exchange.trading_types import AlgoStatus, MarginType, OrderStatus, WorkingType
from core.models import OrderType, Side, TimeInForce
from tests.waiting import until

pytestmark = pytest.mark.timeout(60)
D = Decimal
KEY, SECRET = DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_API_SECRET


# ---- pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (-2011, 400, UnknownOrderError), (-2013, 400, UnknownOrderError),
        (-2021, 400, WouldTriggerError), (-2022, 400, ReduceOnlyRejectedError),
        (-2019, 400, InsufficientMarginError), (-5022, 400, PostOnlyRejectedError),
        (-1015, 429, RateLimitedError), (-1003, 429, RateLimitedError),
        (None, 418, RateLimitedError), (-1013, 400, OrderRejectedError),
        (-1111, 400, OrderRejectedError), (-4164, 400, OrderRejectedError),
        (-4137, 400, OrderRejectedError), (-4120, 400, OrderRejectedError),
        (-1102, 400, OrderRejectedError), (-1021, 400, TimestampError),
        (-1022, 400, AuthenticationError), (-2015, 401, AuthenticationError),
        (-1125, 400, ListenKeyError), (-9999, 400, ExchangeError),
    ],
)  # fmt: skip
def test_binance_codes_map_to_one_exception_each(code, status, kind):
    error = map_error(code, status, "refused")
    assert type(error) is kind and (error.code, error.status) == (code, status)


def test_refinements_stay_order_rejections_and_rate_limits_carry_the_wait():
    assert isinstance(map_error(-2019, 400, "m"), OrderRejectedError)
    assert not isinstance(map_error(-2013, 400, "m"), OrderRejectedError)
    limited = map_error(-1015, 429, "Too many new orders.", retry_after_s=12.0)
    assert isinstance(limited, RateLimitedError) and limited.retry_after_s == 12.0


def test_scrub_removes_signatures_listen_keys_and_url_passwords():
    key = "Ab3" * 21 + "x"
    text = (
        f"GET http://u:pw@127.0.0.1:9/fapi/v1/order?symbol=BTCUSDT&timestamp=1&signature=abc123 "
        f"wss://x/private/ws?listenKey={key} and bare {key}"
    )
    clean = scrub(text)
    assert "abc123" not in clean and key not in clean and ":pw@" not in clean
    assert "symbol=BTCUSDT" in clean and "signature=***" in clean


def test_the_factory_does_not_adopt_the_demo_clock_and_uses_the_demo_keys():
    settings = settings_from_mapping({"DEMO_PORT": "1"})
    client = trading_client(settings, attempts=1)
    assert client.base_url == "http://127.0.0.1:1" and client.time_offset_ms == 0


def test_an_order_needs_a_name():
    client = TradingClient("http://127.0.0.1:1", KEY, SECRET, sync_clock=False)
    with pytest.raises(ValueError):
        client.get_order("BTCUSDT")


# ---- a scripted Binance on 127.0.0.1 --------------------------------------------------------


def _order_json(params: dict[str, str], order_id: int) -> dict:
    return {
        "orderId": order_id, "symbol": params["symbol"], "status": "NEW",
        "clientOrderId": params["newClientOrderId"], "price": params.get("price", "0"),
        "avgPrice": "0.00", "origQty": params["quantity"], "executedQty": "0",
        "timeInForce": params.get("timeInForce", "GTC"), "type": params["type"],
        "reduceOnly": params.get("reduceOnly") == "true", "closePosition": False,
        "side": params["side"], "updateTime": 1700000000000 + order_id,
    }  # fmt: skip


class Stub:
    """Binance's order endpoints with a script for the next order placements.

    Each step of `script` handles one POST /fapi/v1/order: "ok" stores and answers; "lost"
    stores, then answers after `hold_s` (past the client's timeout); ("fail", status, code)
    answers an error without storing; ("stored-fail", status, code) stores, then errors.
    `clock_ahead_ms` puts the server's clock ahead and enforces a 1 s window on timestamps.
    """

    def __init__(self) -> None:
        self.script: list = []
        self.orders: dict[str, dict] = {}
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.hold_s = 1.5
        self.clock_ahead_ms: int | None = None
        self.time_tells_truth = True
        self.query_failures = 0  # GET /fapi/v1/order answers 503 this many times
        self.headers: dict[str, str] = {}
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, params: dict[str, str]) -> tuple[int, object, float]:
        with self.lock:
            self.log.append((method, path, params))
            if path == "/fapi/v1/time":
                ahead = (self.clock_ahead_ms or 0) if self.time_tells_truth else 0
                return 200, {"serverTime": int(time.time() * 1000) + ahead}, 0
            if self.clock_ahead_ms is not None and "timestamp" in params:
                expected = time.time() * 1000 + self.clock_ahead_ms
                if abs(int(params["timestamp"]) - expected) > 1000:
                    return 400, {"code": -1021, "msg": "Timestamp outside the recvWindow."}, 0
            if (method, path) == ("POST", "/fapi/v1/order"):
                return self._place(params)
            if (method, path) == ("GET", "/fapi/v1/order") and self.query_failures:
                self.query_failures -= 1
                return 503, {"code": -1001, "msg": "Internal error."}, 0
            if (method, path) == ("GET", "/fapi/v1/order"):
                found = self.orders.get(params.get("origClientOrderId", ""))
                if found is None:
                    return 400, {"code": -2013, "msg": "Order does not exist."}, 0
                return 200, found, 0
            if (method, path) == ("POST", "/fapi/v1/marginType"):
                return 400, {"code": -4046, "msg": "No need to change margin type."}, 0
            if (method, path) == ("GET", "/fapi/v1/openOrders"):
                return 200, list(self.orders.values()), 0
            return 404, {"code": -1, "msg": "not here"}, 0

    def _place(self, params: dict[str, str]) -> tuple[int, object, float]:
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, tuple) and step[0] == "fail":
            return step[1], {"code": step[2], "msg": "scripted failure"}, 0
        order = _order_json(params, len(self.orders) + 1)
        self.orders[params["newClientOrderId"]] = order
        if isinstance(step, tuple):  # stored-fail
            return step[1], {"code": step[2], "msg": "scripted failure after storing"}, 0
        return 200, order, self.hold_s if step == "lost" else 0.0

    def placements(self) -> int:
        return sum(1 for m, p, _ in self.log if (m, p) == ("POST", "/fapi/v1/order"))


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            params = dict(parse_qsl(url.query)) | dict(parse_qsl(body))
            status, payload, hold_s = stub.handle(self.command, url.path, params)
            if hold_s:
                time.sleep(hold_s)  # the network losing the answer: the client times out
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in stub.headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class Naps:
    """The client's injected sleep: records the backoff instead of waiting."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


@pytest.fixture
def stub():
    state = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _stub_client(stub: Stub, naps: Naps | None = None, **kwargs) -> TradingClient:
    naps = naps or Naps()
    kwargs.setdefault("timeout_s", 0.5)
    return TradingClient(stub.url, KEY, SECRET, sync_clock=False, sleep=naps, **kwargs)


def _limit(cid: str) -> OrderRequest:
    return OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.010"), cid, price=D("40000.0"))


def test_a_lost_answer_is_found_by_its_client_id_and_never_resent(stub):
    stub.script = ["lost"]
    order = _stub_client(stub).place_order(_limit("lost-1"))
    assert order.client_order_id == "lost-1" and order.order_id == 1
    assert stub.placements() == 1
    asked = [p for m, path, p in stub.log if (m, path) == ("GET", "/fapi/v1/order")]
    assert [p["origClientOrderId"] for p in asked] == ["lost-1"]


@pytest.mark.parametrize("status", [503, 408])
def test_send_status_unknown_asks_first_and_resends_only_when_the_exchange_has_none(stub, status):
    stub.script = [("fail", status, -1007)]
    naps = Naps()
    order = _stub_client(stub, naps, backoff_s=0.25).place_order(_limit("unknown-1"))
    assert order.client_order_id == "unknown-1"
    assert stub.placements() == 2 and len(stub.orders) == 1
    methods = [(m, p) for m, p, _ in stub.log]
    assert methods == [("POST", "/fapi/v1/order"), ("GET", "/fapi/v1/order"),
                       ("POST", "/fapi/v1/order")]  # fmt: skip
    assert naps.taken == [0.25]  # one backoff before asking


def test_a_5xx_after_the_order_stood_returns_that_order_without_a_second(stub):
    stub.script = [("stored-fail", 502, 0)]
    order = _stub_client(stub).place_order(_limit("stood-1"))
    assert order.order_id == 1 and stub.placements() == 1


def test_outcome_stays_unknown_when_every_attempt_is_lost_and_unseen(stub):
    stub.script = [("fail", 503, -1007)] * 3
    with pytest.raises(OutcomeUnknownError):
        _stub_client(stub, attempts=3).place_order(_limit("never-1"))
    assert stub.placements() == 3 and stub.orders == {}


def test_when_the_exchange_cannot_be_asked_nothing_is_resent(stub):
    stub.script, stub.query_failures = ["lost"], 99
    with pytest.raises(OutcomeUnknownError) as caught:
        _stub_client(stub, attempts=3).place_order(_limit("unasked-1"))
    assert "not resending" in str(caught.value)
    assert stub.placements() == 1 and len(stub.orders) == 1
    asked = [p for m, p, _ in stub.log if (m, p) == ("GET", "/fapi/v1/order")]
    assert len(asked) == 3  # the lookup's own bounded retries


def test_a_rejection_is_raised_at_once_with_its_code(stub):
    stub.script = [("fail", 400, -2019)]
    with pytest.raises(InsufficientMarginError) as caught:
        _stub_client(stub).place_order(_limit("margin-1"))
    assert caught.value.code == -2019 and stub.placements() == 1


def test_too_many_orders_pauses_the_order_budget_then_sends_again(stub):
    stub.script = [("fail", 429, -1015)]
    naps, limiter = _fake_budget()
    order = _stub_client(stub, naps, order_limiter=limiter).place_order(_limit("busy-1"))
    assert order.client_order_id == "busy-1" and stub.placements() == 2
    assert naps.taken == [pytest.approx(1.0)]  # no Retry-After: the order budget holds 1 s


def _fake_budget() -> tuple[Naps, OrderRateLimiter]:
    """An order budget on a clock that moves only when it sleeps."""
    naps, now = Naps(), [100.0]

    def sleep(seconds: float) -> None:
        naps(seconds)
        now[0] += seconds

    return naps, OrderRateLimiter(clock=lambda: now[0], sleep=sleep)


def test_server_order_counts_are_adopted_by_the_budget(stub):
    stub.headers = {"X-MBX-ORDER-COUNT-10S": "300", "X-MBX-ORDER-COUNT-1M": "300"}
    naps, limiter = _fake_budget()
    client = _stub_client(stub, naps, order_limiter=limiter)
    client.place_order(_limit("count-1"))
    assert limiter.counts() == (300, 300)
    client.place_order(_limit("count-2"))
    assert naps.taken == [pytest.approx(10.0)]


def test_a_stale_clock_resyncs_once_and_the_request_goes_through(stub):
    stub.clock_ahead_ms = 30_000
    client = _stub_client(stub)
    assert client.open_orders() == []
    assert abs(client.time_offset_ms - 30_000) < 1000
    paths = [p for _, p, _ in stub.log]
    assert paths == ["/fapi/v1/openOrders", "/fapi/v1/time", "/fapi/v1/openOrders"]


def test_a_clock_that_stays_wrong_is_retried_once_then_raises(stub):
    stub.clock_ahead_ms, stub.time_tells_truth = 30_000, False  # /time lies: no re-sync helps
    with pytest.raises(TimestampError) as caught:
        _stub_client(stub).open_orders()
    assert caught.value.code == -1021
    paths = [p for _, p, _ in stub.log]
    assert paths == ["/fapi/v1/openOrders", "/fapi/v1/time", "/fapi/v1/openOrders"]


def test_margin_type_already_set_is_success(stub):
    assert _stub_client(stub).set_margin_type("BTCUSDT", MarginType.ISOLATED) is False


def test_secrets_never_reach_messages_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    client = TradingClient("http://127.0.0.1:9", KEY, SECRET, sync_clock=False, attempts=2,
                           sleep=Naps(), timeout_s=0.5)  # fmt: skip
    with pytest.raises(OutcomeUnknownError) as caught:
        client.open_orders("BTCUSDT")  # nothing listens on port 9: a connection error
    shown = str(caught.value) + "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in shown and "signature=" not in shown.replace("signature=***", "")


# ---- against the demo exchange ----------------------------------------------------------------


@pytest.fixture
def demo():
    exchange = DemoExchangeThread(
        DemoOptions(speed=1, faults=True, api_keys={KEY: SECRET}, balance=2500)
    ).start()
    yield exchange
    exchange.stop()


def _needs(demo, method: str, path: str) -> None:
    """The demo exchange serves `path` (a route it lost would otherwise fail obscurely)."""
    status = requests.request(method, demo.rest_url + path, timeout=5).status_code
    assert status != 404, f"the demo exchange has no {method} {path}"


def _fault(demo, path: str, **params) -> None:
    answer = requests.post(f"{demo.rest_url}/_demo/fault/{path}", params=params, timeout=5)
    assert answer.status_code == 200, f"the demo exchange refused fault {path} {params}"


def _demo_client(demo, **kwargs) -> TradingClient:
    return TradingClient(demo.rest_url, KEY, SECRET, sync_clock=False, **kwargs)


def _far_below(client: TradingClient, symbol: str = "BTCUSDT") -> Decimal:
    return (client.premium_index(symbol).mark_price * D("0.8")).quantize(D("0.1"))


def test_account_calls_answer_domain_types(demo):
    client = _demo_client(demo)
    [usdt] = client.balances()
    assert (usdt.asset, usdt.wallet_balance) == ("USDT", D("2500.00000000"))
    assert client.account().wallet_balance == D("2500.00000000")
    assert client.positions() == []
    assert client.set_leverage("BTCUSDT", 50) == 50
    assert client.set_margin_type("BTCUSDT", MarginType.ISOLATED) is True
    assert client.set_margin_type("BTCUSDT", MarginType.ISOLATED) is False
    tiers = client.leverage_brackets("BTCUSDT")["BTCUSDT"]
    assert (tiers[0].initial_leverage, tiers[0].maint_margin_ratio) == (125, D("0.004"))
    assert len(client.leverage_brackets()) >= 3
    mark = client.premium_index("BTCUSDT")
    assert mark.symbol == "BTCUSDT" and mark.mark_price > 0 and mark.next_funding_time > mark.time


def test_listen_keys_open_keep_alive_close_and_lapse(demo):
    client = _demo_client(demo)
    key = client.new_listen_key()
    client.keep_alive_listen_key(key)
    client.close_listen_key(key)
    with pytest.raises(ListenKeyError) as caught:
        client.keep_alive_listen_key(key)
    assert key not in str(caught.value)


def test_a_skewed_clock_is_resynced_against_the_demo(demo):
    client = _demo_client(demo, time_offset_ms=-30_000)
    assert client.balances()[0].asset == "USDT"
    assert abs(client.time_offset_ms) < 2_000  # the demo at 1x keeps the wall clock


def test_a_wrong_secret_is_an_authentication_error_without_the_secret(demo):
    client = TradingClient(demo.rest_url, KEY, "not-the-secret", sync_clock=False)
    with pytest.raises(AuthenticationError) as caught:
        client.balances()
    assert caught.value.code == -1022 and "not-the-secret" not in str(caught.value)


def test_a_limit_order_lives_is_modified_and_canceled(demo):
    _needs(demo, "POST", "/fapi/v1/order")
    client = _demo_client(demo)
    price = _far_below(client)
    cid = client_order_id("test", 1, "entry")
    placed = client.place_order(
        OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.010"), cid, price=price)
    )
    assert (placed.status, placed.client_order_id, placed.price) == (OrderStatus.NEW, cid, price)
    assert client.get_order("BTCUSDT", client_order_id=cid) == placed
    assert [o.order_id for o in client.open_orders("BTCUSDT")] == [placed.order_id]
    lower = price - D("100")
    moved = client.modify_order("BTCUSDT", Side.BUY, D("0.020"), lower, client_order_id=cid)
    assert (moved.order_id, moved.price, moved.orig_qty) == (placed.order_id, lower, D("0.020"))
    canceled = client.cancel_order("BTCUSDT", order_id=placed.order_id)
    assert canceled.status is OrderStatus.CANCELED
    assert client.open_orders() == []
    with pytest.raises(UnknownOrderError) as caught:
        client.cancel_order("BTCUSDT", client_order_id=cid)
    assert caught.value.code == -2011


def test_a_market_order_fills_into_a_position_and_a_reduce_only_closes_it(demo):
    _needs(demo, "POST", "/fapi/v1/order")
    client = _demo_client(demo)
    with pytest.raises(ReduceOnlyRejectedError):  # nothing to reduce yet
        client.place_order(OrderRequest("BTCUSDT", Side.SELL, OrderType.MARKET, D("0.010"),
                                        "ro-0", reduce_only=True))  # fmt: skip
    entry = client.place_order(
        OrderRequest("BTCUSDT", Side.BUY, OrderType.MARKET, D("0.010"), "mkt-1")
    )
    filled = until(lambda: client.get_order("BTCUSDT", order_id=entry.order_id).status
                   is OrderStatus.FILLED, 10)  # fmt: skip
    assert filled
    [position] = client.positions("BTCUSDT")
    assert position.amount == D("0.010")
    [fill] = client.user_trades("BTCUSDT", order_id=entry.order_id)
    assert (fill.qty, fill.side, fill.maker) == (D("0.010"), Side.BUY, False)
    assert fill.commission > 0
    client.place_order(OrderRequest("BTCUSDT", Side.SELL, OrderType.MARKET, D("0.010"), "ro-1",
                                    reduce_only=True))  # fmt: skip
    assert until(lambda: client.positions("BTCUSDT") == [], 10)


def test_a_time_in_force_gtd_order_and_filter_rejections(demo):
    _needs(demo, "POST", "/fapi/v1/order")
    client = _demo_client(demo)
    price = _far_below(client)
    with pytest.raises(OrderRejectedError) as caught:  # 0.0001 BTC: off the 0.001 step
        client.place_order(OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.0001"),
                                        "bad-step", price=price))  # fmt: skip
    assert caught.value.code in (-1111, -4023, -1013)
    with pytest.raises(OrderRejectedError) as caught:  # notional under the minimum
        client.place_order(OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.001"),
                                        "tiny", price=D("1000.0")))  # fmt: skip
    assert caught.value.code == -4164
    good_till = int(time.time() * 1000) + 3_600_000
    gtd = client.place_order(OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.010"), "gtd",
                                          price=price, time_in_force=TimeInForce.GTD,
                                          good_till_date=good_till))  # fmt: skip
    assert gtd.time_in_force is TimeInForce.GTD
    client.cancel_all_orders("BTCUSDT")
    assert client.open_orders("BTCUSDT") == []


def test_algo_orders_are_placed_listed_and_canceled(demo):
    _needs(demo, "POST", "/fapi/v1/algoOrder")
    client = _demo_client(demo)
    below = _far_below(client)
    stop = client.place_algo_order(AlgoOrderRequest(
        "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, "stop-1", trigger_price=below,
        working_type=WorkingType.MARK_PRICE, close_position=True))  # fmt: skip
    assert (stop.client_algo_id, stop.algo_status, stop.trigger_price) == (
        "stop-1",
        AlgoStatus.NEW,
        below,
    )
    assert client.get_algo_order(client_algo_id="stop-1").algo_id == stop.algo_id
    assert [a.algo_id for a in client.open_algo_orders("BTCUSDT")] == [stop.algo_id]
    client.cancel_algo_order(algo_id=stop.algo_id)
    assert client.get_algo_order(algo_id=stop.algo_id).algo_status is AlgoStatus.CANCELED
    assert client.open_algo_orders() == []
    with pytest.raises(WouldTriggerError):  # a sell stop above the market triggers at once
        client.place_algo_order(AlgoOrderRequest(
            "BTCUSDT", Side.SELL, OrderType.STOP_MARKET, "stop-2", quantity=D("0.010"),
            trigger_price=below * 2))  # fmt: skip
    client.place_algo_order(AlgoOrderRequest(
        "BTCUSDT", Side.SELL, OrderType.TRAILING_STOP_MARKET, "trail-1", quantity=D("0.010"),
        callback_rate=D("1.0"), activate_price=below * 2))  # fmt: skip
    client.cancel_all_algo_orders("BTCUSDT")
    assert client.open_algo_orders("BTCUSDT") == []


def test_a_silent_order_is_found_not_duplicated(demo):
    _needs(demo, "POST", "/fapi/v1/order")
    _fault(demo, "order", mode="silent", hold_s="2")
    client = _demo_client(demo, timeout_s=1.0, backoff_s=0.1)
    price = _far_below(client)
    order = client.place_order(
        OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.010"), "silent-1", price=price)
    )
    assert order.client_order_id == "silent-1" and order.status is OrderStatus.NEW
    assert [o.client_order_id for o in client.open_orders()] == ["silent-1"]


def test_a_late_ack_past_the_timeout_is_found_not_duplicated(demo):
    _needs(demo, "POST", "/fapi/v1/order")
    _fault(demo, "order", mode="delay", ms="1500")
    client = _demo_client(demo, timeout_s=0.5, backoff_s=0.1)
    price = _far_below(client)
    order = client.place_order(
        OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.010"), "late-1", price=price)
    )
    assert order.client_order_id == "late-1"
    assert len(client.open_orders()) == 1


@pytest.mark.parametrize(
    ("code", "kind"), [(-2019, InsufficientMarginError), (-2022, ReduceOnlyRejectedError)]
)
def test_a_rejection_fault_surfaces_as_its_class(demo, code, kind):
    _needs(demo, "POST", "/fapi/v1/order")
    _fault(demo, "order", mode="reject", code=str(code))
    client = _demo_client(demo)
    with pytest.raises(kind) as caught:
        client.place_order(OrderRequest("BTCUSDT", Side.BUY, OrderType.MARKET, D("0.010"), "r-1"))
    assert caught.value.code == code
    assert client.open_orders() == [] and client.positions() == []


def test_a_too_many_orders_fault_is_retried_once_the_budget_allows(demo):
    _needs(demo, "POST", "/fapi/v1/order")
    _fault(demo, "order", mode="reject", code="-1015")
    naps, limiter = _fake_budget()
    client = _demo_client(demo, sleep=naps, order_limiter=limiter)
    price = _far_below(client)
    order = client.place_order(
        OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.010"), "r-2", price=price)
    )
    assert order.client_order_id == "r-2"
    assert naps.taken == [pytest.approx(1.0)]  # it waited for the order budget first
    assert len(client.open_orders()) == 1


def test_the_dead_mans_switch_cancels_open_orders(demo):
    _needs(demo, "POST", "/fapi/v1/countdownCancelAll")
    client = _demo_client(demo)
    price = _far_below(client)
    client.place_order(
        OrderRequest("BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.010"), "dms-1", price=price)
    )
    client.countdown_cancel_all("BTCUSDT", 1_000)
    assert until(lambda: client.open_orders("BTCUSDT") == [], 10)
    assert client.get_order("BTCUSDT", client_order_id="dms-1").status is OrderStatus.CANCELED
