// The optimisation page's ECharts views: the heatmap of the objective over two parameters, the
// parallel coordinates, the Pareto front and the walk-forward windows. Each takes plain result
// rows ({n, params, metricas, cumple}) and draws into its element; metrics may be null.
const echarts = window.echarts;

// backtesting.optimizador.LOWER_IS_BETTER, from the page's config: for these the best is the lowest.
export const LOWER_IS_BETTER = new Set(JSON.parse(document.getElementById("config").textContent).menor_es_mejor);
const COLORS = ["#ef5350", "#f5a623", "#26a69a"]; // worst → best
const TEXT = "#d1d4dc";
const MUTED = "#787b86";
const LINE = "#2a2e39";

/** A finite number or null (the API sends null for undefined metrics). */
export const numero = (value) => (value === null || value === undefined || value === "" || !Number.isFinite(Number(value)) ? null : Number(value));
export const metrica = (row, name) => numero(row.metricas?.[name]);

/** Whether `a` is a better value of `name` than `b`; a null never is. */
export function mejorQue(a, b, name) {
  if (a === null) return false;
  if (b === null) return true;
  return LOWER_IS_BETTER.has(name) ? a < b : a > b;
}

/** Rows best first: those meeting the constraints, then by the objective, nulls last. */
export function ordenar(rows, name) {
  return [...rows].sort((r, s) => {
    if (r.cumple !== s.cumple) return r.cumple ? -1 : 1;
    const a = metrica(r, name);
    const b = metrica(s, name);
    if (a === b) return r.n - s.n;
    return mejorQue(a, b, name) ? -1 : mejorQue(b, a, name) ? 1 : r.n - s.n;
  });
}

const comparar = (a, b) => (typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b)));
const distintos = (rows, name) => [...new Set(rows.map((r) => r.params[name]))].sort(comparar);
const corto = (value) => (value === null ? "—" : Math.abs(value) >= 1000 ? value.toFixed(0) : String(Number(value.toPrecision(4))));

function instancia(element) {
  return echarts.getInstanceByDom(element) || echarts.init(element, null, { renderer: "canvas" });
}

function base(extra) {
  return {
    backgroundColor: "transparent", textStyle: { color: TEXT }, animation: false,
    tooltip: { confine: true }, ...extra,
  };
}

const eje = (name, data) => ({
  type: data ? "category" : "value", data, name, nameLocation: "middle", nameGap: 28, scale: true,
  axisLine: { lineStyle: { color: MUTED } }, splitLine: { lineStyle: { color: LINE } },
});

/** The visual map colouring `name`'s values from worst (red) to best (green). */
function mapaColor(values, name, dimension, extra = {}) {
  const finite = values.filter((v) => v !== null);
  let [min, max] = finite.length ? [Math.min(...finite), Math.max(...finite)] : [0, 1];
  if (min === max) [min, max] = [min - 1, max + 1];
  const colors = LOWER_IS_BETTER.has(name) ? [...COLORS].reverse() : COLORS;
  return {
    type: "continuous", min, max, dimension, calculable: true, orient: "horizontal", left: "center",
    bottom: 0, text: [`${name} alto`, "bajo"], textStyle: { color: TEXT }, inRange: { color: colors }, ...extra,
  };
}

/** The best row of each (x, y) cell; with `y` null, of each x value (one parameter searched). */
function celdas(rows, x, y, name) {
  const cells = new Map();
  for (const row of rows) {
    const key = JSON.stringify([row.params[x], y === null ? null : row.params[y]]);
    const held = cells.get(key);
    const better = !held || (row.cumple && !held.cumple)
      || (row.cumple === held.cumple && mejorQue(metrica(row, name), metrica(held, name), name));
    if (better) cells.set(key, row);
  }
  return [...cells.values()];
}

/** Heatmap of `name` (best per cell) over parameters x and y; a click gives the cell's row. */
export function pintarHeatmap(element, rows, x, y, name, onPick) {
  const chart = instancia(element);
  chart.clear();
  const xs = distintos(rows, x);
  const best = celdas(rows, x, y, name);
  const item = (row, position) => ({ value: [...position, metrica(row, name) ?? "-"], n: row.n, cumple: row.cumple });
  let option;
  if (y === null) {
    option = base({
      title: { text: `${name} por ${x}`, textStyle: { color: TEXT, fontSize: 13 } },
      grid: { left: 60, right: 20, top: 40, bottom: 50 },
      xAxis: eje(x, xs.map(String)), yAxis: eje(name),
      series: [{ type: "bar", name, data: best.map((r) => ({ value: [String(r.params[x]), metrica(r, name) ?? "-"], n: r.n })) }],
    });
  } else {
    const ys = distintos(rows, y);
    const ix = new Map(xs.map((v, i) => [v, i]));
    const iy = new Map(ys.map((v, i) => [v, i]));
    option = base({
      title: { text: `${name} (la mejor por celda)`, textStyle: { color: TEXT, fontSize: 13 } },
      grid: { left: 70, right: 20, top: 40, bottom: 95 },
      xAxis: { ...eje(x, xs.map(String)), splitArea: { show: true } },
      yAxis: { ...eje(y, ys.map(String)), nameGap: 45, splitArea: { show: true } },
      visualMap: mapaColor(best.map((r) => metrica(r, name)), name, 2),
      tooltip: {
        confine: true,
        formatter: (p) => `${x} = ${xs[p.data.value[0]]}<br>${y} = ${ys[p.data.value[1]]}<br>${name}: ${p.data.value[2] === "-" ? "—" : corto(p.data.value[2])}${p.data.cumple ? "" : "<br>no cumple las restricciones"}<br><i>clic: abrir en backtest</i>`,
      },
      series: [{
        type: "heatmap", name, data: best.map((r) => item(r, [ix.get(r.params[x]), iy.get(r.params[y])])),
        label: { show: xs.length * ys.length <= 150, color: "#000", formatter: (p) => (p.data.value[2] === "-" ? "" : corto(p.data.value[2])) },
        emphasis: { itemStyle: { borderColor: "#fff", borderWidth: 1 } },
      }],
    });
  }
  chart.setOption(option, true);
  chart.off("click");
  chart.on("click", (p) => p.data && onPick(p.data.n));
  return chart;
}

/** Parallel coordinates: one axis per searched parameter and per objective, one line per row. */
export function pintarParalelo(element, rows, dims, objectives, onPick, limit = 3000) {
  const chart = instancia(element);
  const shown = ordenar(rows, objectives[0]).slice(0, limit);
  const axes = [...dims, ...objectives].map((name, dim) => {
    const categorical = dim < dims.length && shown.some((r) => typeof r.params[name] !== "number");
    return { dim, name, type: categorical ? "category" : "value", scale: true,
      data: categorical ? distintos(shown, name).map(String) : undefined,
      nameTextStyle: { color: TEXT }, axisLine: { lineStyle: { color: MUTED } } };
  });
  const data = shown.map((r) => ({
    value: [...dims.map((d) => (typeof r.params[d] === "number" ? r.params[d] : String(r.params[d]))),
      ...objectives.map((o) => metrica(r, o) ?? "-")],
    n: r.n,
  }));
  chart.setOption(base({
    title: { text: `Coordenadas paralelas (${shown.length} combinaciones)`, textStyle: { color: TEXT, fontSize: 13 } },
    parallel: { left: 60, right: 90, top: 60, bottom: 60 },
    parallelAxis: axes,
    visualMap: mapaColor(shown.map((r) => metrica(r, objectives[0])), objectives[0], dims.length, { orient: "vertical", right: 0, top: "middle", left: undefined, bottom: undefined }),
    series: [{ type: "parallel", data, lineStyle: { width: 1, opacity: 0.45 }, emphasis: { lineStyle: { width: 3, opacity: 1 } } }],
  }), true);
  chart.off("click");
  chart.on("click", (p) => p.data && onPick(p.data.n));
  return chart;
}

/** Every row on the first two objectives, the Pareto front highlighted and joined. */
export function pintarPareto(element, rows, front, objectives, onPick) {
  const chart = instancia(element);
  const [a, b] = objectives;
  const point = (r) => ({ value: [metrica(r, a), metrica(r, b)], n: r.n });
  const usable = (p) => p.value[0] !== null && p.value[1] !== null;
  const frontPoints = front.map(point).filter(usable).sort((p, q) => p.value[0] - q.value[0]);
  chart.setOption(base({
    title: { text: `Frente de Pareto: ${a} frente a ${b}`, textStyle: { color: TEXT, fontSize: 13 } },
    legend: { top: 0, right: 0, textStyle: { color: TEXT } },
    grid: { left: 70, right: 20, top: 40, bottom: 50 },
    xAxis: eje(a), yAxis: { ...eje(b), nameGap: 50 },
    tooltip: { confine: true, formatter: (p) => `${a}: ${corto(p.data.value[0])}<br>${b}: ${corto(p.data.value[1])}<br><i>clic: abrir en backtest</i>` },
    series: [
      { type: "scatter", name: "combinaciones", data: rows.map(point).filter(usable), symbolSize: 5, itemStyle: { color: MUTED, opacity: 0.6 } },
      { type: "line", name: "frente de Pareto", data: frontPoints, symbolSize: 9, itemStyle: { color: "#f5a623" }, lineStyle: { color: "#f5a623" }, z: 3 },
    ],
  }), true);
  chart.off("click");
  chart.on("click", (p) => p.data && onPick(p.data.n));
  return chart;
}

const dia = (ms) => new Date(ms).toISOString().slice(0, 10);

/** The objective in and out of sample per window (bars) and the stitched OOS equity (line). */
export function pintarValidacion(barsElement, equityElement, validacion) {
  const windows = validacion.ventanas || [];
  const label = (w) => (w.is ? `IS ${dia(w.is[0])}→${dia(w.is[1])}<br>OOS ${dia(w.oos[0])}→${dia(w.oos[1])}` : `test ${(w.test || []).map((r) => `${dia(r[0])}→${dia(r[1])}`).join(", ")}`);
  const bars = instancia(barsElement);
  bars.setOption(base({
    title: { text: `${validacion.objetivo} por ventana: dentro y fuera de la muestra`, textStyle: { color: TEXT, fontSize: 13 } },
    legend: { top: 0, right: 0, textStyle: { color: TEXT } },
    grid: { left: 60, right: 20, top: 40, bottom: 30 },
    xAxis: eje("", windows.map((w, i) => `V${i + 1}`)), yAxis: eje(validacion.objetivo),
    tooltip: { trigger: "axis", confine: true, formatter: (ps) => `${label(windows[ps[0].dataIndex])}<br>${ps.map((p) => `${p.seriesName}: ${p.value === "-" ? "—" : corto(p.value)}`).join("<br>")}` },
    series: [
      { type: "bar", name: "in-sample", data: windows.map((w) => numero(w.objetivo_is) ?? "-"), itemStyle: { color: "#2962ff" } },
      { type: "bar", name: "fuera de muestra", data: windows.map((w) => numero(w.objetivo_oos) ?? "-"), itemStyle: { color: "#f5a623" } },
    ],
  }), true);
  const curve = validacion.equity_oos || [];
  equityElement.hidden = !curve.length;
  if (!curve.length) return { bars, equity: null };
  const equity = instancia(equityElement);
  equity.setOption(base({
    title: { text: "Capital fuera de muestra (ventanas encadenadas)", textStyle: { color: TEXT, fontSize: 13 } },
    grid: { left: 70, right: 20, top: 40, bottom: 30 },
    xAxis: { ...eje(""), type: "time", scale: true }, yAxis: { ...eje("USDT"), nameGap: 55 },
    tooltip: { trigger: "axis", confine: true },
    series: [{ type: "line", name: "capital OOS", data: curve.map(([t, e]) => [t, numero(e) ?? "-"]), showSymbol: false, lineStyle: { color: "#26a69a" } }],
  }), true);
  return { bars, equity };
}

/** Resize every chart in the page (after a panel is shown or the window changes). */
export function redimensionar(elements) {
  for (const element of elements) echarts.getInstanceByDom(element)?.resize();
}
