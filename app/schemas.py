"""Request and response models: the single source of validation and of /openapi.json."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
)

from backtesting.optimizador import METODOS, VALIDACIONES
from core.fills import TRAILING_MAX, TRAILING_MIN
from core.intervals import MAX_MS
from core.models import (
    BOT_COMMANDS,
    CALLBACK_RATE_MAX,
    CALLBACK_RATE_MIN,
    CLIENT_ORDER_ID_PATTERN,
    BotMode,
    BotStatus,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
)
from core.risk_types import SETTING_FIELDS

SYMBOL = Field(pattern=r"^[A-Z0-9]{2,20}$", description="Binance symbol, e.g. BTCUSDT")


# Bounds of every number a request may carry (documented in /openapi.json and the README).
# Body numbers are strict: true is not 1, "5" is not 5; NaN and infinity are refused.
MAX_QUANTITY = 1e15
MAX_PRICE = 1e15
MIN_CAPITAL, MAX_CAPITAL = 1.0, 1e12
Quantity = Annotated[StrictFloat, Field(gt=0, le=MAX_QUANTITY)]
Price = Annotated[StrictFloat, Field(gt=0, le=MAX_PRICE)]
EpochMs = Annotated[StrictInt, Field(ge=0, le=MAX_MS)]
TimeText = Annotated[StrictStr, Field(min_length=1, max_length=40)]
Fraction = Annotated[StrictFloat, Field(gt=0, lt=1)]
# A trailing stop's callback fraction, in the range Binance's TRAILING_STOP_MARKET accepts.
Trailing = Annotated[StrictFloat, Field(ge=TRAILING_MIN, le=TRAILING_MAX)]
TRAILING = Field(
    default=None, description="trailing stop: 0.01 trails 1 % behind the best price since the entry"
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Error(BaseModel):
    error: str
    detalle: dict[str, Any] = {}


CallbackRate = Annotated[StrictFloat, Field(ge=CALLBACK_RATE_MIN, le=CALLBACK_RATE_MAX)]
ClientOrderId = Annotated[StrictStr, Field(pattern=CLIENT_ORDER_ID_PATTERN.pattern)]


class OrdenIn(Strict):
    """A new order; which fields each `tipo` needs is checked by core.models.check_order_fields."""

    symbol: str = SYMBOL
    lado: Side
    cantidad: Quantity | None = Field(default=None, description="omitted with cerrar_posicion")
    precio: Price | None = Field(
        default=None, description="required for limite, stop_limite, toma_ganancias_limite"
    )
    tipo: OrderType = OrderType.LIMIT
    estado: Literal["pendiente", "abierta"] = "pendiente"
    precio_disparo: Price | None = Field(
        default=None, description="trigger price of the stop_* and toma_ganancias_* types"
    )
    tasa_retroceso: CallbackRate | None = Field(
        default=None, description="stop_movil_mercado: callback rate in percent"
    )
    precio_activacion: Price | None = Field(
        default=None, description="stop_movil_mercado: optional activation price"
    )
    solo_reducir: StrictBool = False
    cerrar_posicion: StrictBool = Field(
        default=False, description="stop_mercado / toma_ganancias_mercado without cantidad"
    )
    tiempo_en_vigor: TimeInForce = TimeInForce.GTC
    vigencia_hasta: EpochMs | None = Field(default=None, description="required with GTD")
    id_cliente: ClientOrderId | None = Field(
        default=None, description="Binance's newClientOrderId, unique among orders"
    )


class OrdenUpdate(Strict):
    estado: OrderState
    cantidad_ejecutada: Annotated[StrictFloat, Field(ge=0, le=MAX_QUANTITY)] | None = Field(
        default=None,
        description="parcial: more than already filled and less than cantidad; "
        "ejecutada: omitted or equal to cantidad",
    )
    motivo: str = Field(default="", max_length=200)


class Orden(BaseModel):
    id: int
    symbol: str
    lado: Side
    tipo: OrderType
    precio: float | None
    cantidad: float
    cantidad_ejecutada: float
    estado: OrderState
    creada: int
    actualizada: int
    precio_disparo: float | None
    tasa_retroceso: float | None
    precio_activacion: float | None
    solo_reducir: bool
    cerrar_posicion: bool
    tiempo_en_vigor: TimeInForce
    vigencia_hasta: int | None
    id_cliente: str | None
    id_exchange: str | None
    id_algo: str | None


class OrdenEvento(BaseModel):
    id: int
    orden_id: int
    desde: OrderState | None
    hacia: OrderState
    momento: int
    actor: str
    motivo: str
    cantidad_ejecutada: float


class OrdenesQuery(Strict):
    symbol: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,20}$")
    estado: OrderState | None = None
    lado: Side | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=1_000_000_000)


class OrdenesPage(BaseModel):
    ordenes: list[Orden]
    total: int
    limit: int
    offset: int


INTERVAL = Field(
    pattern=r"^(1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)$",
    description="Binance interval",
)
TIME = Field(
    default=None,
    description=f"ISO date/datetime (UTC) or epoch ms from 0 to {MAX_MS} (year 9999)",
)


class RunIn(Strict):
    """What a backtest and an optimisation share: the market, the dates and the costs."""

    symbol: str = SYMBOL
    interval: str = INTERVAL
    strategy: StrictStr = Field(default="sma_cruce", description="see GET /estrategias")
    capital: StrictFloat = Field(default=10_000, ge=MIN_CAPITAL, le=MAX_CAPITAL)
    start_date: TimeText | EpochMs | None = TIME
    end_date: TimeText | EpochMs | None = Field(
        default=None, description="a date alone includes that whole day; a datetime is exclusive"
    )
    comision: StrictFloat = Field(default=0.0004, ge=0, le=0.01)
    comision_maker: StrictFloat | None = Field(default=None, ge=0, le=0.01)
    slippage: StrictFloat = Field(default=0.0, ge=0, le=500, description="basis points")
    apalancamiento: StrictFloat = Field(default=1, ge=1, le=125)
    tamano: StrictFloat = Field(default=1.0, gt=0, le=1)
    stop_loss: Fraction | TimeText | None = Field(default=None, description="0.02 or '2atr'")
    take_profit: Fraction | TimeText | None = Field(default=None, description="0.04 or '3atr'")
    trailing: Trailing | None = TRAILING
    funding: StrictFloat | None = Field(default=None, ge=-0.01, le=0.01, description="rate per 8 h")


class BacktestIn(RunIn):
    params: dict[str, Any] = Field(default_factory=dict)
    trabajo: StrictBool = Field(
        default=False,
        description="run as a job (202 with its id, GET /trabajos/<id>): no download limit",
    )


class BacktestsQuery(Strict):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000_000)


class VelasQuery(Strict):
    symbol: str = SYMBOL
    interval: str = INTERVAL
    start: TimeText | None = TIME
    end: TimeText | None = TIME
    limit: int = Field(default=500, ge=1, le=10_000)
    indicadores: str | None = Field(
        default=None,
        pattern=r"^[a-z]+(:\d+)?(,[a-z]+(:\d+)?)*$",
        description="overlays, e.g. sma:20,ema:50,rsi:14,bollinger:20,macd,atr:14,vwap,obv",
    )


class CrucesQuery(Strict):
    symbol: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,20}$")
    interval: str | None = Field(
        default=None, pattern=r"^(1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)$"
    )
    since: TimeText | None = TIME
    limit: int = Field(default=100, ge=1, le=1000)


# A risk limit as a number (RiskSettings checks its bounds and names the field); null: default.
RiskNumber = Annotated[StrictInt | StrictFloat, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
Riesgo = create_model(
    "Riesgo",
    __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
    **{public: (RiskNumber | None, None) for public in SETTING_FIELDS.values()},  # type: ignore[call-overload]
)
# A stop or target as a bot stores it: a fraction or "N atr", at most the column's 20 characters.
Distance = Fraction | Annotated[StrictStr, Field(min_length=1, max_length=20)] | None


class BotIn(Strict):
    """A new bot: POST /backtest's fields without the dates, plus its name, mode and risk."""

    nombre: StrictStr = Field(min_length=1, max_length=60, pattern=r"\S")
    symbol: str = SYMBOL
    interval: str = INTERVAL
    estrategia: StrictStr = Field(default="sma_cruce", description="see GET /estrategias")
    params: dict[str, Any] = Field(default_factory=dict)
    capital: StrictFloat = Field(default=10_000, ge=MIN_CAPITAL, le=MAX_CAPITAL)
    comision: StrictFloat = Field(default=0.0004, ge=0, le=0.01)
    comision_maker: StrictFloat | None = Field(default=None, ge=0, le=0.01)
    slippage: StrictFloat = Field(default=0.0, ge=0, le=500, description="basis points")
    apalancamiento: StrictFloat = Field(default=1, ge=1, le=125)
    tamano: StrictFloat = Field(default=1.0, gt=0, le=1)
    stop_loss: Distance = Field(default=None, description="0.02 or '2atr'")
    take_profit: Distance = Field(default=None, description="0.04 or '3atr'")
    trailing: Trailing | None = TRAILING
    funding: StrictFloat | None = Field(default=None, ge=-0.01, le=0.01, description="rate per 8 h")
    modo: BotMode | None = Field(default=None, description="default: TRADING_MODE")
    riesgo: Riesgo = Field(default_factory=Riesgo, description="risk limits; null: default")  # type: ignore[valid-type]


class PararIn(Strict):
    cerrar: StrictBool = Field(default=False, description="also close the open position")


class BotResumen(BaseModel):
    id: int
    nombre: str
    estado: BotStatus
    motivo: str
    symbol: str
    interval: str
    estrategia: str
    modo: BotMode
    capital: float
    en_marcha: bool
    creado: int
    actualizado: int


class BotsPage(BaseModel):
    bots: list[BotResumen]


class BotComando(BaseModel):
    id: int
    bot_id: int | None
    comando: Literal[BOT_COMMANDS]  # type: ignore[valid-type]
    cerrar: bool
    creado: int
    hecho: int | None
    resultado: str


class BotOrdenesQuery(Strict):
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=1_000_000_000)


# Candles one GET /senales evaluates at most, so a request's work stays bounded.
MAX_SIGNAL_CANDLES = 5_000


class SenalesQuery(Strict):
    symbol: str = SYMBOL
    interval: str = INTERVAL
    estrategia: str = Field(default="sma_cruce", max_length=60, description="see GET /estrategias")
    params: str | None = Field(
        default=None,
        max_length=2_000,
        description='the strategy\'s params as a JSON object, e.g. {"rapida":9,"lenta":21}',
    )
    limit: int = Field(
        default=1_000, ge=1, le=MAX_SIGNAL_CANDLES, description="latest stored candles evaluated"
    )


class Senal(BaseModel):
    open_time: int
    posicion: float
    precio: float
    motivo: str


class SenalesPage(BaseModel):
    symbol: str
    interval: str
    estrategia: str
    params: dict[str, Any]
    velas: int = Field(description="candles evaluated")
    senales: list[Senal]


# --- optimisations, run as jobs (POST /optimizaciones) ---------------------------------------

MAX_SPACE_VALUES = 10_000  # values one parameter's list or desde/hasta/paso range may hold
MAX_TRIALS = 100_000
SpaceNumber = StrictInt | StrictFloat
SpaceValue = SpaceNumber | StrictStr | StrictBool


class Rango(Strict):
    """Every value from `desde` to `hasta` by `paso` (`hasta` included when on a step)."""

    desde: SpaceNumber
    hasta: SpaceNumber
    paso: SpaceNumber = Field(gt=0)


class Limites(Strict):
    """Bounds a sampler (aleatorio, tpe, genetico, cmaes) draws from; `log`: on a log scale."""

    min: SpaceNumber
    max: SpaceNumber
    log: StrictBool = False


EspacioValor = (
    Annotated[list[SpaceValue], Field(min_length=1, max_length=MAX_SPACE_VALUES)]
    | Rango
    | Limites
    | SpaceValue
)


class OpcionesValidacion(Strict):
    """walk_forward: ventanas, in_sample, anclado; kfold_purgado: folds, embargo, test_folds."""

    ventanas: StrictInt | None = Field(default=None, ge=1, le=100)
    in_sample: StrictFloat | None = Field(default=None, gt=0, lt=1)
    anclado: StrictBool | None = None
    folds: StrictInt | None = Field(default=None, ge=2, le=50)
    embargo: StrictInt | None = Field(default=None, ge=0, le=1_000_000)
    test_folds: StrictInt | None = Field(default=None, ge=1, le=49)


MetricName = Annotated[StrictStr, Field(min_length=1, max_length=60)]


class OptimizacionIn(RunIn):
    """An optimisation: POST /backtest's market, dates and costs, and what to search."""

    espacio: dict[str, EspacioValor] = Field(  # type: ignore[valid-type]
        min_length=1,
        max_length=20,
        description="per parameter: [values], {desde, hasta, paso}, {min, max, log} or a fixed "
        "value",
    )
    metodo: Literal[METODOS] = "grid"  # type: ignore[valid-type]
    objetivo: MetricName | Annotated[list[MetricName], Field(min_length=1, max_length=5)] = "sharpe"
    validacion: Literal[VALIDACIONES] | None = None  # type: ignore[valid-type]
    opciones_validacion: OpcionesValidacion = Field(default_factory=OpcionesValidacion)
    intentos: StrictInt | None = Field(default=None, ge=1, le=MAX_TRIALS)
    restricciones: dict[str, StrictInt | StrictFloat] = Field(
        default_factory=dict, max_length=20, description="{metric: worst accepted value}"
    )
    semilla: StrictInt = Field(default=0, ge=0, le=2**32 - 1)
    workers: StrictInt | None = Field(
        default=None, ge=1, le=64, description="Dask worker processes (default: none)"
    )


class OptimizacionCreada(BaseModel):
    id: int
    estado: str
    url: str


class OptimizacionesQuery(Strict):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000_000)


class TrabajosQuery(OptimizacionesQuery):
    """Paging of /trabajos, as of /optimizaciones."""


class ResultadosQuery(Strict):
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=1_000_000_000)
    orden: str | None = Field(
        default=None,
        pattern=r"^[a-z_]{1,60}$",
        description="a metric: best first (highest, or lowest for costs and durations)",
    )
