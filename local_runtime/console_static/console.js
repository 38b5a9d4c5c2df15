// The local console: draws /_local/console/data every second. Charts are uPlot's
// (vendored beside this file); nothing is fetched from anywhere but this server.
"use strict";

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const POLL_MS = 1000;
const charts = new Map(); // widget title -> {plot, shape}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function formatNumber(value) {
  if (value === null || value === undefined) return "–";
  if (Math.abs(value) >= 100 || Number.isInteger(value)) return String(Math.round(value * 10) / 10);
  return value.toFixed(2);
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleTimeString() : "";
}

function chartSize(container) {
  return { width: Math.max(container.clientWidth, 100), height: Math.max(container.clientHeight, 60) };
}

function drawWidget(grid, widget) {
  let card = grid.querySelector(`[data-widget="${CSS.escape(widget.title)}"]`);
  if (!card) {
    card = element("article", { class: "widget", "data-widget": widget.title });
    card.style.gridColumn = `${widget.x + 1} / span ${widget.width}`;
    card.style.gridRow = `${widget.y + 1} / span ${widget.height}`;
    card.append(element("h3", { text: widget.title }), element("ul", { class: "legend" }), element("div", { class: "chart" }));
    grid.append(card);
  }
  const legend = card.querySelector(".legend");
  legend.replaceChildren(...widget.lines.map((line, index) => {
    const item = element("li", { "data-metric": line.name, "data-namespace": line.namespace, "data-stat": line.stat });
    item.style.setProperty("--colour", COLOURS[index % COLOURS.length]);
    item.append(`${line.label} (${line.stat}) `);
    if (!line.local) item.append(element("span", { class: "absent", text: "not measured locally" }));
    else if (line.value === null) item.append(element("span", { class: "absent", text: "no data yet" }));
    else item.append(element("span", { class: "value", text: formatNumber(line.value) }));
    return item;
  }));
  const times = widget.lines.length ? widget.lines[0].series.map((point) => point[0]) : [];
  const data = [times, ...widget.lines.map((line) => line.series.map((point) => point[1]))];
  const container = card.querySelector(".chart");
  const shape = widget.lines.map((line) => line.label).join("|");
  let chart = charts.get(widget.title);
  if (!chart || chart.shape !== shape) {
    if (chart) chart.plot.destroy();
    const options = {
      ...chartSize(container),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [{ size: 24 }, { size: 56 }],
      series: [{}, ...widget.lines.map((line, index) => ({
        label: line.label, stroke: COLOURS[index % COLOURS.length], width: 1.5, spanGaps: false,
        points: { show: true, size: 5 },
      }))],
    };
    chart = { plot: new uPlot(options, data, container), shape };
    charts.set(widget.title, chart);
  } else {
    chart.plot.setData(data);
  }
}

function drawQueues(queues) {
  const body = document.querySelector("#queues tbody");
  body.replaceChildren(...queues.map((queue) => {
    const row = element("tr", { "data-queue": queue.logical_id });
    const name = element("td", {}, element("code", { text: queue.logical_id }));
    if (queue.dead_letters_of) name.append(` (DLQ of ${queue.dead_letters_of})`);
    const action = element("td");
    if (queue.dead_letters_of) {
      const button = element("button", { type: "button", text: "Redrive", "data-redrive": queue.logical_id });
      button.disabled = queue.visible === 0;
      button.addEventListener("click", () => redrive(queue.logical_id, button));
      action.append(button);
    }
    row.append(
      name,
      element("td", { class: "number", "data-column": "visible", text: String(queue.visible) }),
      element("td", { class: "number", "data-column": "in_flight", text: String(queue.in_flight) }),
      element("td", { class: "number", "data-column": "delayed", text: String(queue.delayed) }),
      action,
    );
    return row;
  }));
}

async function redrive(queue, button) {
  button.disabled = true;
  const result = document.getElementById("redrive-result");
  try {
    const response = await fetch("redrive", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ queue }),
    });
    const body = await response.json();
    result.textContent = response.ok
      ? `${queue}: ${body.moved} message(s) moved back (${body.status})`
      : `${queue}: ${body.message}`;
  } catch (error) {
    result.textContent = `${queue}: ${error}`;
  }
}

function drawEvents(events) {
  const body = document.querySelector("#events tbody");
  body.replaceChildren(...events.map((event) => {
    let status = event.status;
    if (event.validity) status += ` (${event.validity})`;
    const errors = event.validation_errors
      ? event.validation_errors.map((e) => `${e.path || "/"}: ${e.message}`).join("; ")
      : event.error || "";
    return element("tr", { "data-event-id": event.event_id },
      element("td", { class: "id", text: event.event_id }),
      element("td", { text: event.app_id || "" }),
      element("td", { text: event.event_name || "" }),
      element("td", { class: `status-${event.status.replace(" ", "-")}`, "data-column": "status", text: status }),
      element("td", { text: errors }),
      element("td", { class: "payload", "data-column": "payload", text: event.payload || "" }),
      element("td", { class: "id", text: event.api_request_id || "" }),
    );
  }));
}

let rollupChart = null;
let rollupShape = "";

function drawRollups(rollups, now) {
  const container = document.getElementById("rollups");
  const names = [...new Set(rollups.map((r) => `${r.app_id} / ${r.event_name}`))].sort().slice(0, COLOURS.length);
  if (!names.length) {
    container.replaceChildren(element("p", { text: "No rollups yet: the aggregate schedule counts stored events." }));
    rollupChart = null;
    rollupShape = "";
    return;
  }
  // The last 24 hours, every hour present (zero when nothing was counted); a bar is
  // drawn from its hour's start, so the axis ends where the next hour begins.
  const current = Math.floor(now / 3600) * 3600;
  const hours = Array.from({ length: 25 }, (_, index) => current - (23 - index) * 3600);
  const data = [hours, ...names.map((name) => hours.map((hour) => {
    const row = rollups.find((r) => r.hour === hour && `${r.app_id} / ${r.event_name}` === name);
    return row ? row.events : 0;
  }))];
  const shape = names.join("|");
  if (rollupChart && rollupShape === shape) {
    rollupChart.setData(data);
    return;
  }
  container.replaceChildren();
  rollupChart = new uPlot({
    width: Math.max(container.clientWidth, 300), height: 240,
    scales: { x: { time: true } },
    axes: [{}, { size: 60 }],
    series: [{}, ...names.map((name, index) => ({
      label: name, stroke: COLOURS[index], fill: `${COLOURS[index]}55`,
      paths: uPlot.paths.bars({ size: [0.9 / names.length, 80], align: 1 }),
      points: { show: false },
    }))],
  }, data, container);
  rollupShape = shape;
}

function drawProblems(problems) {
  const list = document.getElementById("problems");
  list.replaceChildren(...(problems.length ? problems : [null]).map((problem) => problem
    ? element("li", { text: `${when(problem.at)} ${problem.function} ${problem.level}: ${problem.message} ${JSON.stringify(problem.fields)}` })
    : element("li", { text: "None so far." })));
}

function drawEmails(emails) {
  const list = document.getElementById("emails");
  list.replaceChildren(...(emails.length ? emails : [null]).map((mail) => mail
    ? element("li", {}, element("strong", { text: `${mail.subject}` }), ` to ${mail.to.join(", ")}`, element("pre", { text: mail.text }))
    : element("li", { text: "No mail yet." })));
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("data", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = await response.json();
    const grid = document.getElementById("dashboard");
    for (const widget of data.widgets) drawWidget(grid, widget);
    drawQueues(data.queues);
    drawEvents(data.events);
    drawRollups(data.rollups, data.now);
    drawProblems(data.problems);
    drawEmails(data.emails);
    status.textContent = `updated ${when(data.now)}`;
    document.getElementById("window").textContent =
      `last ${data.window_seconds / 60} min, ${data.bucket_seconds} s buckets`;
    status.dataset.updated = String(data.now);
  } catch (error) {
    status.textContent = `cannot reach the runtime: ${error.message}`;
  }
  setTimeout(poll, POLL_MS);
}

window.addEventListener("resize", () => {
  for (const [title, chart] of charts) {
    const card = document.querySelector(`[data-widget="${CSS.escape(title)}"] .chart`);
    if (card) chart.plot.setSize(chartSize(card));
  }
});

poll();
