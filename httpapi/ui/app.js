// svcdns dashboard: the server renders the whole page; this script keeps
// it live. Every "change" event on /v1/events re-reads /v1/dashboard and
// redraws the tables; "status" events update the cards and the chart.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  };
  const dash = (s) => s ? s : el("span", { class: "muted" }, "—");
  const hostPort = (a, p) => a.includes(":") ? `[${a}]:${p}` : `${a}:${p}`;
  const clock = (t) => new Date(t).toISOString().slice(11, 19);
  const RC_COLORS = { NOERROR: "#22c55e", NXDOMAIN: "#eab308", SERVFAIL: "#ef4444", REFUSED: "#f97316", FORMERR: "#a855f7" };
  const rcColor = (rc) => RC_COLORS[rc] || "#94a3b8";

  let state = null;        // the last /v1/dashboard
  let known = new Set();   // instance ids shown, to flash new ones
  let pending = null;

  function query() { return $("search").value.trim().toLowerCase(); }

  function matches(svc, q) {
    if (!q || svc.name.includes(q)) return true;
    return svc.instances.some((i) => {
      const f = [i.container_name, i.node, i.host_address ? hostPort(i.host_address, i.host_port) : "", ...i.tags];
      for (const n of i.networks) f.push(n.network, hostPort(n.address, i.port));
      return f.some((x) => x && x.toLowerCase().includes(q));
    });
  }

  function instRow(i, fresh) {
    const nets = el("td");
    if (i.networks.length === 0) nets.append(dash(""));
    for (const n of i.networks) nets.append(el("div", null, el("code", null, n.address), " ", el("span", { class: "net" }, n.network || "api")));
    const tags = el("td");
    for (const t of i.tags) tags.append(el("span", { class: "tag" }, t));
    const port = i.port ? `${i.port}/${i.protocol}` + (i.port_name ? ` ${i.port_name}` : "") : "";
    return el("tr", { class: "inst" + (fresh ? " fresh" : ""), "data-id": i.id },
      el("td", { class: "ctr" }, i.container_name),
      el("td", null, i.node),
      nets,
      el("td", null, i.host_address ? el("code", null, hostPort(i.host_address, i.host_port)) : dash("")),
      el("td", null, dash(port)),
      tags,
      el("td", null, el("span", { class: "pill " + (i.passing ? "ok" : "bad") }, i.passing ? "passing" : "failing")),
      el("td", null, el("span", { class: "src src-" + i.source }, i.source)));
  }

  function renderServices() {
    const table = $("services");
    for (const tb of table.querySelectorAll("tbody")) tb.remove();
    const q = query();
    const shown = state.services.filter((s) => matches(s, q));
    const seen = new Set();
    for (const s of shown) {
      const tb = el("tbody", { class: "svc", "data-service": s.name },
        el("tr", { class: "svc-head" }, el("th", { colspan: "8" },
          el("span", { class: "svc-name" }, s.name), " ",
          el("span", { class: "count" }, `${s.passing}/${s.instances.length} passing`))));
      for (const i of s.instances) {
        tb.append(instRow(i, known.size > 0 && !known.has(i.id)));
        seen.add(i.id);
      }
      table.append(tb);
    }
    if (shown.length === 0) {
      table.append(el("tbody", { class: "empty" }, el("tr", null, el("td", { colspan: "8", class: "muted" },
        q ? `no service matches “${q}”` : "no services yet: start a container, or PUT /v1/instances/{id}"))));
    }
    for (const s of state.services) for (const i of s.instances) seen.add(i.id);
    known = seen;
    $("svc-count").textContent = q ? `${shown.length} of ${state.services.length}` : String(state.services.length);
  }

  function renderChanges() {
    const tb = $("changes").querySelector("tbody");
    tb.replaceChildren();
    for (const c of state.changes) {
      tb.append(el("tr", { class: "chg chg-" + c.action },
        el("td", { class: "when", "data-time": c.time, title: c.time }, clock(c.time)),
        el("td", null, el("span", { class: "act act-" + c.action }, c.action)),
        el("td", null, el("b", null, c.instance.service), " " + c.instance.container_name),
        el("td", { class: "muted" }, c.instance.source)));
    }
    if (state.changes.length === 0) tb.append(el("tr", { class: "none" }, el("td", { class: "muted" }, "nothing changed since svcdns started")));
  }

  // renderRepair says what the last repairing resync changed, by name.
  function renderRepair(r) {
    const dd = $("docker-repair");
    if (!r) { dd.textContent = "none"; return; }
    dd.replaceChildren(`${clock(r.time)} UTC, ${r.reason}: `);
    r.containers.forEach((c, k) => {
      if (k) dd.append(", ");
      dd.append(el("span", { class: "act act-" + c.action }, c.action), " " + c.name);
    });
    if (r.containers.length === 0) dd.append(`${r.count} changed`);
    if (r.more) dd.append(` and ${r.more} more`);
  }

  function renderStatus(st) {
    $("index").textContent = st.index;
    const d = st.docker;
    if (d) {
      const s = $("docker-state");
      s.textContent = d.connected ? "connected" : "disconnected";
      s.className = "pill " + (d.connected ? "ok" : "bad");
      $("docker-sync").textContent = d.last_sync ? clock(d.last_sync) + " UTC" : "never";
      $("docker-events").textContent = d.events;
      $("docker-resyncs").textContent = d.resyncs;
      $("docker-repairs").textContent = d.repairs;
      renderRepair(d.last_repair);
      $("docker-error").textContent = d.last_error || "";
    }
    const c = st.catalog;
    $("cat-services").textContent = c.services;
    $("cat-instances").textContent = c.instances;
    $("cat-passing").textContent = c.passing;
    $("cat-containers").textContent = c.containers;
    const tb = $("rcodes").querySelector("tbody");
    tb.replaceChildren();
    const now = st.queries ? Object.entries(st.queries.per_second).sort((a, b) => b[1] - a[1]) : [];
    for (const [rc, v] of now) tb.append(el("tr", null, el("td", null, el("span", { class: "rc rc-" + rc }, rc)), el("td", null, v.toFixed(1))));
    if (now.length === 0) tb.append(el("tr", null, el("td", { colspan: "2", class: "muted" }, st.queries ? "no queries" : "no sample yet")));
  }

  // chart draws the query rates as stacked bars, one per sample.
  function chart(rates) {
    const svg = $("chart");
    const NS = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    const samples = rates.samples.slice(-60);
    const n = Math.max(12, samples.length), w = 300 / n, h = 60;
    $("chart-span").textContent = `last ${samples.length} × ${rates.step_seconds} s`;
    const totals = samples.map((s) => Object.values(s.per_second).reduce((a, b) => a + b, 0));
    const peak = Math.max(1, ...totals);
    const codes = [...new Set(samples.flatMap((s) => Object.keys(s.per_second)))].sort();
    samples.forEach((s, k) => {
      let y = h;
      const x = (n - samples.length + k) * w;
      for (const rc of codes) {
        const v = s.per_second[rc] || 0;
        if (!v) continue;
        const bh = (v / peak) * (h - 10);
        y -= bh;
        const r = document.createElementNS(NS, "rect");
        r.setAttribute("x", x + 0.5); r.setAttribute("y", y); r.setAttribute("width", w - 1); r.setAttribute("height", bh);
        r.setAttribute("fill", rcColor(rc));
        const t = document.createElementNS(NS, "title");
        t.textContent = `${clock(s.time)} ${rc} ${v.toFixed(1)}/s`;
        r.append(t);
        svg.append(r);
      }
    });
    const label = document.createElementNS(NS, "text");
    label.setAttribute("x", 3); label.setAttribute("y", 8);
    label.textContent = `peak ${peak.toFixed(1)} q/s`;
    svg.append(label);
    let legend = svg.nextElementSibling;
    if (!legend || !legend.classList.contains("legend")) {
      legend = el("div", { class: "legend" });
      svg.after(legend);
    }
    legend.replaceChildren(...codes.map((rc) => el("span", null, el("i"), rc)));
    legend.querySelectorAll("i").forEach((i, k) => { i.style.background = rcColor(codes[k]); });
  }

  async function refresh() {
    pending = null;
    const r = await fetch("/v1/dashboard", { headers: { Accept: "application/json" } });
    if (!r.ok) return;
    state = await r.json();
    renderServices();
    renderChanges();
    renderStatus(state.status);
    chart(state.queries);
  }
  function soon() { if (!pending) pending = setTimeout(refresh, 150); }

  function live(on, text) {
    $("live").className = "live " + (on ? "on" : "off");
    $("live-text").textContent = text;
  }

  function connect() {
    const es = new EventSource("/v1/events");
    es.addEventListener("open", () => { live(true, "live"); soon(); });
    es.addEventListener("error", () => live(false, "reconnecting…"));
    es.addEventListener("change", soon);
    es.addEventListener("reset", soon);
    es.addEventListener("status", (e) => {
      const st = JSON.parse(e.data);
      renderStatus(st);
      if (state && st.queries) {
        const last = state.queries.samples[state.queries.samples.length - 1];
        if (!last || last.time !== st.queries.time) { state.queries.samples.push(st.queries); chart(state.queries); }
      }
    });
  }

  // The explain box asks /v1/explain and draws the answer in place.
  async function explain(ev) {
    ev.preventDefault();
    const p = new URLSearchParams({ name: $("ex-name").value, type: $("ex-type").value });
    if ($("ex-client").value.trim()) p.set("client", $("ex-client").value.trim());
    const out = $("explain-result");
    const r = await fetch("/v1/explain?" + p);
    const x = await r.json();
    out.replaceChildren();
    if (!r.ok) { out.append(el("p", { class: "err" }, x.error)); return; }
    out.append(el("p", null, el("code", null, x.question), " for ", el("code", null, x.client), ": ",
      el("span", { class: "rc rc-" + x.rcode }, x.rcode), " — " + x.outcome));
    const rrs = [...x.answer, ...x.additional];
    if (rrs.length) out.append(el("pre", { class: "rrs" }, rrs.join("\n")));
    if (x.instances.length) {
      const tb = el("tbody");
      for (const i of x.instances) {
        const gets = el("td");
        if (i.addresses.length === 0) gets.append(dash(""));
        for (const a of i.addresses) gets.append(el("code", null, a), " ");
        if (i.port) gets.append(el("span", { class: "muted" }, `port ${i.port}`));
        tb.append(el("tr", null, el("td", null, i.container), gets,
          el("td", null, el("span", { class: "rule rule-" + i.rule }, i.rule)), el("td", null, i.reason)));
      }
      out.append(el("table", { class: "why" }, el("thead", null, el("tr", null,
        el("th", null, "instance"), el("th", null, "gets"), el("th", null, "rule"), el("th", null, "why"))), tb));
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("search").addEventListener("input", () => { if (state) renderServices(); });
    const f = $("explain-form");
    if (f) f.addEventListener("submit", explain);
    if (window.EventSource) connect(); else refresh();
  });
})();
