// The usage view: the caller's spend per day by model (a stacked bar chart, drawn as SVG
// with the key's budget as a line when its period is a day), and the same as a table.

import { api } from "./api.js";
import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#3b6fd8", "#d8743b", "#3ba86b", "#a83b9c", "#c9a227", "#5a5a5a"];
const WIDTH = 640;
const HEIGHT = 220;
const PAD = 36;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}

const usd = (value) => (value === null || value === undefined ? "—" : `$${value.toFixed(4)}`);

/** Days and models of `rows` ({day, model, cost_usd}): cost by day, then by model. */
function byDay(rows) {
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const models = [...new Set(rows.map((r) => r.model))].sort();
  const cost = new Map(days.map((d) => [d, new Map()]));
  for (const row of rows) cost.get(row.day).set(row.model, row.cost_usd);
  return { days, models, cost };
}

function chart(usage) {
  const { days, models, cost } = byDay(usage.by_day);
  const totals = days.map((d) => [...cost.get(d).values()].reduce((a, b) => a + b, 0));
  const daily = usage.budget_period === "day" ? usage.max_budget_usd : null;
  const top = Math.max(...totals, daily ?? 0, 1e-9);
  const scale = (HEIGHT - 2 * PAD) / top;
  const step = (WIDTH - 2 * PAD) / Math.max(days.length, 1);
  const bars = [];
  days.forEach((day, i) => {
    let y = HEIGHT - PAD;
    models.forEach((model, m) => {
      const value = cost.get(day).get(model) ?? 0;
      if (!value) return;
      const height = value * scale;
      y -= height;
      const bar = svg("rect", {
        x: PAD + i * step + step * 0.15,
        y,
        width: step * 0.7,
        height,
        fill: COLOURS[m % COLOURS.length],
        "data-model": model,
      });
      bar.append(svg("title", {}, `${day} ${model}: ${usd(value)}`));
      bars.push(bar);
    });
    bars.push(svg("text", { x: PAD + i * step + step / 2, y: HEIGHT - PAD + 14, "text-anchor": "middle", "font-size": 10 }, day.slice(5)));
  });
  const parts = [
    svg("line", { x1: PAD, y1: HEIGHT - PAD, x2: WIDTH - PAD, y2: HEIGHT - PAD, stroke: "currentColor" }),
    svg("text", { x: 4, y: PAD - 8, "font-size": 10 }, usd(top)),
    ...bars,
  ];
  if (daily !== null) {
    const y = HEIGHT - PAD - daily * scale;
    parts.push(
      svg("line", { x1: PAD, y1: y, x2: WIDTH - PAD, y2: y, stroke: "#c0392b", "stroke-dasharray": "6 4", class: "budget-line" }),
      svg("text", { x: WIDTH - PAD, y: y - 4, "text-anchor": "end", "font-size": 10, fill: "#c0392b" }, `budget ${usd(daily)}/day`),
    );
  }
  const legend = h(
    "ul",
    { class: "legend" },
    // An SVG swatch: the page's content security policy allows no inline style.
    models.map((model, m) =>
      h("li", {}, svg("svg", { class: "swatch", viewBox: "0 0 10 10", "aria-hidden": "true" }, svg("rect", { width: 10, height: 10, fill: COLOURS[m % COLOURS.length] })), model),
    ),
  );
  const figure = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": "Spend per day by model", class: "usage-chart" }, ...parts);
  return h("figure", {}, figure, legend);
}

function summary(usage) {
  const period = usage.budget_period && usage.budget_period !== "none" ? ` this ${usage.budget_period}` : "";
  return h(
    "dl",
    { class: "usage-summary" },
    h("dt", {}, `Spent${period}`), h("dd", { "data-field": "spent" }, usd(usage.spent_usd)),
    h("dt", {}, "Budget"), h("dd", { "data-field": "budget" }, usage.max_budget_usd === null ? "none" : usd(usage.max_budget_usd)),
    h("dt", {}, "Reserved"), h("dd", {}, usd(usage.reserved_usd)),
    h("dt", {}, "Remaining"), h("dd", { "data-field": "remaining" }, usd(usage.remaining_usd)),
  );
}

function table(usage) {
  const rows = usage.by_day.map((r) =>
    h("tr", {}, h("td", {}, r.day), h("td", {}, r.model), h("td", { class: "num" }, r.calls),
      h("td", { class: "num" }, r.prompt_tokens + r.completion_tokens), h("td", { class: "num" }, usd(r.cost_usd))),
  );
  return h(
    "table",
    { class: "usage-table" },
    h("thead", {}, h("tr", {}, ["Day", "Model", "Calls", "Tokens", "Cost"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows),
  );
}

export async function usageView(main) {
  const usage = await api("GET", "/api/usage");
  main.append(h("h1", {}, "Usage"), summary(usage));
  if (!usage.by_day.length) {
    main.append(h("p", { class: "empty" }, "No model calls in the last 30 days."));
    return;
  }
  main.append(chart(usage), table(usage));
}
