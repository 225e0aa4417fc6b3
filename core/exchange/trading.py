"""Kryptelion's trading client: orders, algo orders, account and listen keys over python-binance.

New and modified orders pass the account's order-rate budget, every request the IP's weight
budget; the transport below (`trading_transport`) executes each intent at most once.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from config.settings import Settings
from core.errors import ExchangeError
from core.exchange.binance_errors import MARGIN_TYPE_UNCHANGED
from core.exchange.binance_fields import integer, rows
from core.exchange.order_requests import AlgoOrderRequest, OrderRequest, check_client_id
from core.exchange.trading_transport import (
    W_ACCOUNT,
    W_ALL_OPEN,
    W_BRACKETS_ALL,
    W_ORDER,
    W_QUERY,
    TradingTransport,
)
from core.exchange.trading_types import (
    AccountSnapshot,
    AccountSummary,
    AlgoOrder,
    AlgoStatus,
    Balance,
    ExchangeOrder,
    Fill,
    LeverageBracket,
    MarginType,
    Position,
    PremiumIndex,
    parse_account,
    parse_algo_order,
    parse_balance,
    parse_brackets,
    parse_fill,
    parse_order,
    parse_position,
    parse_premium,
)
from core.models import Side


class TradingClient(TradingTransport):
    """The trading calls, against Binance or any host speaking its protocol (the demo exchange).

    Constructed as TradingTransport is: thread-safe, its clock synced at start unless told not to.
    """

    # ---- orders ----------------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> ExchangeOrder:
        """Place a LIMIT or MARKET order once; returns the exchange's answer (or, after an
        unknown outcome, the order found under its client id). Raises OrderRejectedError and
        kin, RateLimitedError, OutcomeUnknownError."""
        what = f"order {request.client_order_id}"
        return self._submit(
            lambda: parse_order(
                self._request(self._client.futures_create_order, request.params(), W_ORDER, True)
            ),
            lambda: self.get_order(request.symbol, client_order_id=request.client_order_id),
            what,
        )

    def modify_order(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        *,
        client_order_id: str | None = None,
        order_id: int | None = None,
    ) -> ExchangeOrder:
        """Change an open LIMIT order's price and quantity (it loses its queue place)."""
        ref = _order_ref(client_order_id, order_id)
        params = {"symbol": symbol, "side": side.name, "quantity": format(quantity, "f"),
                  "price": format(price, "f"), **ref}  # fmt: skip

        def applied() -> ExchangeOrder | None:
            order = self.get_order(symbol, client_order_id=client_order_id, order_id=order_id)
            return order if (order.price, order.orig_qty) == (price, quantity) else None

        return self._submit(
            lambda: parse_order(
                self._request(self._client.futures_modify_order, params, W_ORDER, True)
            ),
            applied,
            f"modify {ref}",
        )

    def cancel_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: int | None = None
    ) -> ExchangeOrder:
        """Cancel an open order; returns it as canceled. Raises UnknownOrderError."""
        params = {"symbol": symbol, **_order_ref(client_order_id, order_id)}

        def settled() -> ExchangeOrder | None:
            order = self.get_order(symbol, client_order_id=client_order_id, order_id=order_id)
            return order if order.state.is_final else None

        return self._submit(
            lambda: parse_order(
                self._request(self._client.futures_cancel_order, params, W_ORDER, False)
            ),
            settled,
            f"cancel {params}",
        )

    def get_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: int | None = None
    ) -> ExchangeOrder:
        """The order as the exchange has it now. Raises UnknownOrderError (-2013)."""
        params = {"symbol": symbol, **_order_ref(client_order_id, order_id)}
        return parse_order(self._read(self._client.futures_get_order, params, W_QUERY))

    def open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        """Open orders of `symbol` (of every symbol when None)."""
        params, weight = ({"symbol": symbol}, W_QUERY) if symbol else ({}, W_ALL_OPEN)
        answer = self._read(self._client.futures_get_open_orders, params, weight)
        return rows(answer, parse_order, "open orders")

    def cancel_all_orders(self, symbol: str) -> None:
        """Cancel every open (non-algo) order of `symbol`."""
        self._read(self._client.futures_cancel_all_open_orders, {"symbol": symbol}, W_ORDER)

    def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> None:
        """Arm (0: disarm) the dead-man's switch: the exchange cancels `symbol`'s orders unless
        this is called again within `countdown_ms`."""
        params = {"symbol": symbol, "countdownTime": str(int(countdown_ms))}
        self._read(self._client.futures_countdown_cancel_all, params, 10)

    # ---- algo (conditional) orders ---------------------------------------------------------

    def place_algo_order(self, request: AlgoOrderRequest) -> AlgoOrder:
        """Place a conditional order once (same guarantees as place_order, by clientAlgoId)."""
        call = self._client.futures_create_algo_order
        return self._submit(
            lambda: parse_algo_order(self._request(call, request.params(), W_ORDER, True)),
            lambda: self.get_algo_order(client_algo_id=request.client_algo_id),
            f"algo order {request.client_algo_id}",
        )

    def cancel_algo_order(
        self, *, client_algo_id: str | None = None, algo_id: int | None = None
    ) -> None:
        """Cancel a conditional order that has not triggered. Raises UnknownOrderError."""
        params = _algo_ref(client_algo_id, algo_id)

        def settled() -> bool | None:
            status = self.get_algo_order(client_algo_id=client_algo_id, algo_id=algo_id)
            return True if status.algo_status is not AlgoStatus.NEW else None

        self._submit(
            lambda: self._request(self._client.futures_cancel_algo_order, params, W_ORDER, False),
            settled,
            f"cancel algo {params}",
        )

    def get_algo_order(
        self, *, client_algo_id: str | None = None, algo_id: int | None = None
    ) -> AlgoOrder:
        """The conditional order as the exchange has it now. Raises UnknownOrderError."""
        params = _algo_ref(client_algo_id, algo_id)
        return parse_algo_order(self._read(self._client.futures_get_algo_order, params, W_QUERY))

    def open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        """Conditional orders not yet triggered, of `symbol` (of every symbol when None)."""
        params, weight = ({"symbol": symbol}, W_QUERY) if symbol else ({}, W_ALL_OPEN)
        answer = self._read(self._client.futures_get_open_algo_orders, params, weight)
        return rows(answer, parse_algo_order, "open algo orders")

    def cancel_all_algo_orders(self, symbol: str) -> None:
        """Cancel every conditional order of `symbol` that has not triggered."""
        call = self._client.futures_cancel_all_algo_open_orders
        self._read(call, {"symbol": symbol}, W_ORDER)

    # ---- account ---------------------------------------------------------------------------

    def positions(self, symbol: str | None = None) -> list[Position]:
        """Open positions (`/fapi/v3/positionRisk` lists only those)."""
        params = {"symbol": symbol} if symbol else {}
        answer = self._read(self._client.futures_position_information, params, W_ACCOUNT)
        return rows(answer, parse_position, "positions")

    def balances(self) -> list[Balance]:
        """The futures wallet, per asset (`/fapi/v3/balance`)."""
        answer = self._read(self._client.futures_account_balance, {}, W_ACCOUNT)
        return rows(answer, parse_balance, "balance")

    def account(self) -> AccountSummary:
        """The account's totals (`/fapi/v2/account`)."""
        return parse_account(self._read(self._client.futures_account, {}, W_ACCOUNT))

    def user_trades(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[Fill]:
        """The account's fills of `symbol`, oldest first, filtered as Binance allows."""
        params = {"symbol": symbol, "limit": str(limit)}
        for key, value in (("orderId", order_id), ("startTime", start_time),
                           ("endTime", end_time), ("fromId", from_id)):  # fmt: skip
            if value is not None:
                params[key] = str(value)
        answer = self._read(self._client.futures_account_trades, params, W_ACCOUNT)
        return rows(answer, parse_fill, "user trades")

    def set_leverage(self, symbol: str, leverage: int) -> int:
        """Set `symbol`'s initial leverage; returns what the exchange set."""
        params = {"symbol": symbol, "leverage": str(leverage)}
        answer = self._read(self._client.futures_change_leverage, params, W_QUERY)
        return integer(answer, "leverage", "leverage")

    def set_margin_type(self, symbol: str, margin_type: MarginType) -> bool:
        """Set ISOLATED or CROSSED; True when it changed, False when it already was (-4046)."""
        params = {"symbol": symbol, "marginType": margin_type.value}
        try:
            self._read(self._client.futures_change_margin_type, params, W_QUERY)
        except ExchangeError as error:
            if error.code == MARGIN_TYPE_UNCHANGED:
                return False
            raise
        return True

    def leverage_brackets(
        self, symbol: str | None = None
    ) -> dict[str, tuple[LeverageBracket, ...]]:
        """Notional tiers by symbol (of `symbol` only, when given)."""
        params, weight = ({"symbol": symbol}, W_QUERY) if symbol else ({}, W_BRACKETS_ALL)
        answer = self._read(self._client.futures_leverage_bracket, params, weight)
        entries = [answer] if isinstance(answer, dict) else answer
        return dict(rows(entries, parse_brackets, "leverage brackets"))

    def premium_index(self, symbol: str) -> PremiumIndex:
        """`symbol`'s mark price and funding (public)."""
        answer = self._read(self._client.futures_mark_price, {"symbol": symbol}, W_QUERY)
        return parse_premium(answer)

    def snapshot(self, symbol: str | None = None) -> AccountSnapshot:
        """Open orders, open algo orders, positions and balances, read one after the other;
        `symbol` keeps the orders and positions to one symbol (weight 12 instead of 90)."""
        now = int(time.time() * 1000)
        return AccountSnapshot(
            tuple(self.open_orders(symbol)), tuple(self.open_algo_orders(symbol)),
            tuple(self.positions(symbol)), tuple(self.balances()), now,
        )  # fmt: skip

    # ---- user data stream keys (API key only, no signature) --------------------------------

    def new_listen_key(self) -> str:
        """Open (or extend) the account's listen key; the caller must keep it secret."""
        return str(self._read(self._client.futures_stream_get_listen_key, {}, W_QUERY))

    def keep_alive_listen_key(self, listen_key: str) -> None:
        """Extend the key by 60 minutes. Raises ListenKeyError (-1125) when it has lapsed."""
        self._read(self._client.futures_stream_keepalive, {"listenKey": listen_key}, W_QUERY)

    def close_listen_key(self, listen_key: str) -> None:
        """Close the key: its stream ends."""
        self._read(self._client.futures_stream_close, {"listenKey": listen_key}, W_QUERY)


def _order_ref(client_order_id: str | None, order_id: int | None) -> dict[str, str]:
    if client_order_id is not None:
        return {"origClientOrderId": check_client_id(client_order_id)}
    if order_id is not None:
        return {"orderId": str(order_id)}
    raise ValueError("name the order: client_order_id or order_id")


def _algo_ref(client_algo_id: str | None, algo_id: int | None) -> dict[str, str]:
    if client_algo_id is not None:
        return {"clientAlgoId": check_client_id(client_algo_id, "client_algo_id")}
    if algo_id is not None:
        return {"algoId": str(algo_id)}
    raise ValueError("name the algo order: client_algo_id or algo_id")


def trading_client(settings: Settings, **options: Any) -> TradingClient:
    """The TradingClient the settings describe: the demo exchange with its demo account (its
    clock is not adopted), or Binance / the testnet with the user's keys and a synced clock."""
    if settings.is_demo:
        key, secret, sync = settings.demo_api_key, settings.demo_api_secret, False
    else:
        key, secret, sync = settings.binance_api_key, settings.binance_api_secret, True
    options.setdefault("sync_clock", sync)
    return TradingClient(settings.binance_rest_url, key.reveal(), secret.reveal(), **options)
