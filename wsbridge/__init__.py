"""The WebSocket bridge: multiplexes Binance kline streams to any number of browsers."""
