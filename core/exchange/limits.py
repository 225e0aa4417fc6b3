"""Binance USDT-M's published limits, shared by our clients and the demo exchange (BINANCE.md)."""

MAX_KLINES = 1500  # candles per /fapi/v1/klines page
DEFAULT_WEIGHT_LIMIT = 2400  # request weight per minute and IP, until exchangeInfo says otherwise
MAX_STREAMS = 200  # streams per WebSocket connection
MAX_MESSAGES_PER_S = 10  # incoming messages per second per WebSocket connection
