// The reporting dashboard: one page, its figures from /v1/report, drawn with Chart.js.
// The filters live in the page's query string, so a filtered view is a link to share.
"use strict";

const FILTERS = ["quarter", "from", "to", "source", "campaign", "vertical", "country", "region",
  "team", "rep", "model", "as_of"];
const DIMENSIONS = { quarter: "quarters", source: "sources", campaign: "campaigns",
  vertical: "verticals", country: "countries", region: "regions", team: "teams", rep: "reps" };
const COLOURS = ["#2f6fde", "#f39c34", "#2ca58d", "#d64545", "#8e6ad8", "#7a8599", "#e0b521",
  "#4fb3d9"];
const MODEL_NAMES = { first_touch: "first touch", last_touch: "last touch", linear: "linear",
  u_shaped: "U-shaped", w_shaped: "W-shaped" };

Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
Chart.defaults.color = "#5b6475";

const charts = {};
window.leadflow = { charts, report: null };

const form = document.getElementById("filters");
const number = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

function money(value) {
  return value == null ? "–" : number.format(value);
}

function percent(value, digits = 0) {
  return value == null ? "–" : `${(value * 100).toFixed(digits)}%`;
}

function duration(seconds) {
  if (seconds == null) return "–";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 2 * 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

function hours(seconds) {
  return seconds == null ? null : Math.round((seconds / 3600) * 100) / 100;
}

function params() {
  const query = new URLSearchParams();
  for (const name of FILTERS) {
    const value = form.elements[name].value;
    if (value) query.set(name, value);
  }
  return query;
}

function fromLocation() {
  const query = new URLSearchParams(window.location.search);
  for (const name of FILTERS) {
    const value = query.get(name);
    if (value == null) continue;
    const field = form.elements[name];
    if (field.tagName === "SELECT" && ![...field.options].some((o) => o.value === value)) {
      field.add(new Option(value, value));
    }
    field.value = value;
  }
}

async function fetchJson(path, query) {
  const response = await fetch(`${path}?${query}`);
  const body = await response.json();
  if (!response.ok) {
    const detail = (body.detail || []).map((d) => `${d.loc.join(".")}: ${d.msg}`).join("; ");
    throw new Error(detail || `${path} answered ${response.status}`);
  }
  return body;
}

function fillDimensions(dimensions) {
  for (const [name, key] of Object.entries(DIMENSIONS)) {
    const field = form.elements[name];
    const chosen = field.value;
    while (field.options.length > 1) field.remove(1);
    for (const value of dimensions[key]) field.add(new Option(value, value));
    if (chosen && ![...field.options].some((o) => o.value === chosen)) {
      field.add(new Option(chosen, chosen));
    }
    field.value = chosen;
  }
}

function draw(name, config) {
  if (charts[name]) charts[name].destroy();
  charts[name] = new Chart(document.getElementById(`chart-${name}`), config);
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function fillTable(id, columns, rows) {
  const table = document.getElementById(id);
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const [label] of columns) {
    const cell = document.createElement("th");
    cell.textContent = label;
    head.appendChild(cell);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const line = body.insertRow();
    for (const [, render] of columns) line.insertCell().textContent = render(row);
  }
  if (!rows.length) {
    const cell = body.insertRow().insertCell();
    cell.colSpan = columns.length;
    cell.textContent = "nothing yet";
  }
}

function renderTiles(report) {
  const { volume, funnel, follow_up: followUp } = report;
  const stage = Object.fromEntries(funnel.stages.map((s) => [s.stage, s]));
  setText("kpi-leads", number.format(volume.leads));
  setText("kpi-leads-sub", `${volume.merged_touchpoints} returning touchpoints`);
  setText("kpi-mqls", number.format(stage.mql.leads));
  setText("kpi-mqls-sub", `${percent(stage.mql.conversion)} of leads`);
  setText("kpi-opportunities", number.format(stage.opportunity.leads));
  setText("kpi-won", `${stage.won.leads} won`);
  setText("kpi-pipeline", money(funnel.pipeline));
  setText("kpi-revenue", `revenue ${money(funnel.revenue)}`);
  setText("kpi-speed", duration(followUp.speed_median_seconds));
  setText("kpi-speed-sub", `median · p90 ${duration(followUp.speed_p90_seconds)}`);
  setText("kpi-sla", percent(followUp.sla_compliance));
  setText("kpi-sla-sub", `${followUp.sla_met} met · ${followUp.sla_breached} breached`);
  setText("kpi-waiting", number.format(followUp.waiting));
  setText("kpi-waiting-sub",
    followUp.waiting ? `longest ${duration(followUp.waiting_longest_seconds)}` : "none");
}

function renderFunnel(funnel) {
  draw("funnel", {
    type: "bar",
    data: {
      labels: funnel.stages.map((s) => s.stage),
      datasets: [{ label: "leads", data: funnel.stages.map((s) => s.leads),
        backgroundColor: COLOURS[0] }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  fillTable("funnel-table", [
    ["stage", (s) => s.stage],
    ["leads", (s) => s.leads],
    ["conversion", (s) => percent(s.conversion)],
    ["median time", (s) => duration(s.median_seconds_from_previous)],
  ], funnel.stages);
}

function renderSpeed(weeks) {
  draw("speed", {
    type: "line",
    data: {
      labels: weeks.map((w) => w.week),
      datasets: [
        { label: "median", data: weeks.map((w) => hours(w.median_seconds)),
          borderColor: COLOURS[0], backgroundColor: COLOURS[0], spanGaps: true },
        { label: "90th percentile", data: weeks.map((w) => hours(w.p90_seconds)),
          borderColor: COLOURS[1], backgroundColor: COLOURS[1], spanGaps: true },
      ],
    },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: "hours" } } } },
  });
}

function renderSla(followUp) {
  draw("sla", {
    type: "doughnut",
    data: {
      labels: ["met", "breached"],
      datasets: [{ data: [followUp.sla_met, followUp.sla_breached],
        backgroundColor: [COLOURS[2], COLOURS[3]] }],
    },
    options: { plugins: { legend: { position: "right" } } },
  });
  setText("sla-note",
    `${percent(followUp.sla_compliance, 1)} compliant · ${followUp.sla_warnings} warned · ` +
    `${followUp.escalations} escalated · ${followUp.reassignments} re-assigned`);
}

function renderRejections(loop) {
  const reasons = [...new Set(loop.reasons.map((r) => r.reason))];
  draw("rejections", {
    type: "bar",
    data: {
      labels: loop.by_campaign.map((c) => c.key),
      datasets: reasons.map((reason, index) => ({
        label: reason,
        backgroundColor: COLOURS[index % COLOURS.length],
        data: loop.by_campaign.map(
          (c) => (c.reasons.find((r) => r.reason === reason) || { leads: 0 }).leads),
      })),
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true,
      ticks: { precision: 0 } } } },
  });
  setText("loop-note", `${loop.rejected} rejected · ${loop.recycled} recycled to nurture`);
}

function renderAttribution(models, model) {
  const chosen = models.find((m) => m.model === model) || { campaigns: [] };
  setText("model-name", MODEL_NAMES[model] || model);
  draw("attribution", {
    type: "bar",
    data: {
      labels: chosen.campaigns.map((c) => c.campaign),
      datasets: [
        { label: "pipeline", data: chosen.campaigns.map((c) => c.pipeline),
          backgroundColor: COLOURS[0] },
        { label: "revenue", data: chosen.campaigns.map((c) => c.revenue),
          backgroundColor: COLOURS[2] },
      ],
    },
    options: { scales: { y: { beginAtZero: true } } },
  });
}

function renderTargets(targets) {
  const attain = (value) => (value == null ? null : Math.round(value * 1000) / 10);
  draw("targets", {
    type: "bar",
    data: {
      labels: targets.map((t) => `${t.scope_id} ${t.quarter}`),
      datasets: [
        { label: "leads", data: targets.map((t) => attain(t.leads_attainment)),
          backgroundColor: COLOURS[0] },
        { label: "MQLs", data: targets.map((t) => attain(t.mqls_attainment)),
          backgroundColor: COLOURS[1] },
        { label: "conversion", data: targets.map((t) => attain(t.conversion_attainment)),
          backgroundColor: COLOURS[2] },
      ],
    },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: "% of target" } } } },
  });
  const pair = (actual, target) => `${actual ?? "–"} / ${target ?? "–"}`;
  fillTable("targets-table", [
    ["quarter", (t) => t.quarter],
    ["of", (t) => `${t.scope} ${t.scope_id}`],
    ["leads (actual / target)", (t) => pair(t.leads_actual, t.leads_target)],
    ["MQLs", (t) => pair(t.mqls_actual, t.mqls_target)],
    ["conversion", (t) => `${percent(t.conversion_actual, 1)} / ${percent(t.conversion_target, 1)}`],
  ], targets);
}

function renderCampaigns(rows) {
  fillTable("campaigns-table", [
    ["campaign", (r) => r.campaign],
    ["cost", (r) => money(r.cost)],
    ["leads", (r) => r.leads],
    ["MQLs", (r) => r.mqls],
    ["opportunities", (r) => r.opportunities],
    ["per lead", (r) => money(r.cost_per_lead)],
    ["per MQL", (r) => money(r.cost_per_mql)],
    ["per opportunity", (r) => money(r.cost_per_opportunity)],
    ["pipeline", (r) => money(r.pipeline)],
    ["revenue", (r) => money(r.revenue)],
    ["return on spend", (r) => (r.return_on_spend == null ? "–" : `${r.return_on_spend.toFixed(2)}×`)],
  ], rows);
}

function when(value) {
  return value ? new Date(value).toISOString().slice(0, 16).replace("T", " ") : "–";
}

function renderRecentLeads(rows) {
  fillTable("leads-table", [
    ["created (UTC)", (r) => when(r.created_at)],
    ["source", (r) => r.source || "–"],
    ["campaign", (r) => r.campaign || "–"],
    ["grade", (r) => r.grade || "–"],
    ["stage", (r) => r.stage],
    ["routed", (r) => r.outcome || "–"],
    ["rep", (r) => r.rep_name || r.rep_id || "–"],
    ["team", (r) => r.team_id || "–"],
    ["SLA due (UTC)", (r) => when(r.sla_due_at)],
    ["SLA", (r) => r.sla_status || "–"],
  ], rows);
  const table = document.getElementById("leads-table");
  rows.forEach((row, index) => {
    const line = table.tBodies[0].rows[index];
    const link = document.createElement("a");
    link.href = `v1/leads/${row.lead_id}`;
    link.textContent = line.cells[0].textContent;
    line.cells[0].replaceChildren(link);
    line.dataset.leadId = row.lead_id;
  });
}

function updateCsvLinks(query) {
  for (const link of document.querySelectorAll("a.csv")) {
    link.href = `v1/metrics/${link.dataset.metric}.csv?${query}`;
  }
}

async function refresh() {
  document.body.dataset.ready = "false";
  const query = params();
  history.replaceState(null, "", query.toString() ? `?${query}` : window.location.pathname);
  updateCsvLinks(query);
  const error = document.getElementById("error");
  try {
    const report = await fetchJson("v1/report", query);
    error.hidden = true;
    fillDimensions(report.dimensions);
    window.leadflow.report = report;
    renderTiles(report);
    renderFunnel(report.funnel);
    renderSpeed(report.speed_by_week);
    renderSla(report.follow_up);
    renderRejections(report.loop);
    renderAttribution(report.attribution, form.elements.model.value);
    renderTargets(report.targets);
    renderCampaigns(report.spend);
    renderRecentLeads(report.recent_leads);
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
  }
  document.body.dataset.ready = "true";
}

form.addEventListener("change", (event) => {
  if (event.target.name === "quarter" && event.target.value) {
    form.elements.from.value = "";
    form.elements.to.value = "";
  } else if ((event.target.name === "from" || event.target.name === "to") && event.target.value) {
    form.elements.quarter.value = "";
  }
  refresh();
});
form.addEventListener("reset", () => setTimeout(refresh, 0));

fromLocation();
refresh();
