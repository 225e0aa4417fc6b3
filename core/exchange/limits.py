"""Binance USDT-M's published limits, shared by our clients and the demo exchange (BINANCE.md)."""

MAX_KLINES = 1500  # candles per /fapi/v1/klines page
DEFAULT_WEIGHT_LIMIT = 2400  # request weight per minute and IP, until exchangeInfo says otherwise
MAX_STREAMS = 200  # streams per WebSocket connection
KLINE_PUSH_S = 0.25  # a kline stream's update period (wall time)
MAX_MESSAGES_PER_S = 10  # incoming messages per second per WebSocket connection
ORDERS_10S, ORDERS_1M = 300, 1200  # new and modified orders per account, per 10 s and per minute
# the response headers carrying the account's order counts of those two windows
COUNT_10S_HEADER, COUNT_1M_HEADER = "X-MBX-ORDER-COUNT-10S", "X-MBX-ORDER-COUNT-1M"
