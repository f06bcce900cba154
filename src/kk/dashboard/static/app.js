// KK Queues dashboard: plain JS, no build step, no third-party code.
// Every value from the API is untrusted (job data is whatever a client sent): the DOM is
// built with textContent and attributes only: no string is ever parsed as HTML.
"use strict";

(() => {
  const POLL_MS = 2500;
  const SPARK_MS = 15000;
  const PAGE_SIZE = 25;
  const PREVIEW_CHARS = 120;
  const TRUNCATE_CHARS = 2000;
  const STATES = ["waiting", "active", "delayed", "prioritized", "completed", "failed", "waiting-children"];
  const OLD_KEY_STORE = "kk.apiKey"; // where earlier versions kept a key: removed at start

  const $ = (id) => document.getElementById(id);
  // The signed-in session: its role and the CSRF token every change must carry. The session
  // itself is an HttpOnly cookie this script never sees.
  const auth = { known: false, signedIn: false, enabled: true, role: null, csrf: null };
  const state = {
    route: null, sparks: null, sparksAt: 0, expanded: new Set(), timer: null, busy: false, again: false,
    loadError: false, // the banner shows an error of the refresh loop, not of an action
  };

  // -- DOM helpers --------------------------------------------------------------------------

  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "data") for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = dv;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // Replace a container's children only when what they show changed, so polling does not
  // reset focus, selection or hover every few seconds.
  function render(container, signature, build) {
    const sig = JSON.stringify(signature);
    if (container.dataset.sig === sig) return;
    container.dataset.sig = sig;
    container.replaceChildren(...[].concat(build()));
  }

  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }

  function fmtNum(n) {
    return typeof n === "number" ? n.toLocaleString() : String(n ?? "—");
  }

  function pretty(value) {
    if (value === undefined) return "";
    try {
      return typeof value === "string" ? value : JSON.stringify(value, null, 2);
    } catch (e) {
      return String(value);
    }
  }

  function preview(value) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    if (!text) return "";
    return text.length > PREVIEW_CHARS ? text.slice(0, PREVIEW_CHARS) + "…" : text;
  }

  // A <pre> that shows the first TRUNCATE_CHARS characters, with "show all" for the rest.
  function longText(key, text) {
    const full = String(text ?? "");
    const pre = h("pre", { class: "code", data: { key } });
    const open = state.expanded.has(key) || full.length <= TRUNCATE_CHARS;
    pre.textContent = open ? full : full.slice(0, TRUNCATE_CHARS);
    if (open) return pre;
    const more = h("button", {
      type: "button",
      class: "link",
      text: `Show all (${(full.length - TRUNCATE_CHARS).toLocaleString()} more characters)`,
      onclick: () => {
        state.expanded.add(key);
        pre.textContent = full;
        more.remove();
      },
    });
    return h("div", { class: "long" }, pre, more);
  }

  let bannerTimer = null;

  function banner(message, kind = "error") {
    const el = $("banner");
    clearTimeout(bannerTimer);
    if (!message) {
      el.className = "banner hidden";
      el.textContent = "";
      return;
    }
    el.className = `banner ${kind}`;
    el.textContent = message;
    if (kind === "ok") bannerTimer = setTimeout(() => banner(""), 4000);
  }

  function live(text, ok) {
    const el = $("live");
    el.textContent = text;
    el.classList.toggle("bad", !ok);
  }

  // -- API --------------------------------------------------------------------------------

  async function api(path, method = "GET", payload = undefined) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && auth.csrf) headers["X-CSRF-Token"] = auth.csrf;
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const res = await fetch(path, init);
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok || (body && body.success === false)) {
      const err = new Error((body && body.error) || `HTTP ${res.status}`);
      err.status = res.status;
      err.code = body && body.code;
      throw err;
    }
    return body;
  }

  const q = (name) => `/api/queues/${encodeURIComponent(name)}`;

  // Mutations ask first, then refresh at once. Resolves to whether the action succeeded.
  async function act(question, path, method = "POST") {
    if (!window.confirm(question)) return false;
    let ok = false;
    try {
      const body = await api(path, method);
      banner(body.message || "Done", "ok");
      ok = true;
    } catch (e) {
      banner(explain(e));
    }
    await refresh();
    return ok;
  }

  function explain(e) {
    if (e.status === 401) return "Please sign in.";
    if (e.status === 403 && auth.role === "read") return "Signed in with a read key: actions need an admin key.";
    return e.message || String(e);
  }

  // -- sign-in ----------------------------------------------------------------------------

  function setSession(data) {
    Object.assign(auth, {
      known: true, signedIn: true, enabled: data.authEnabled, role: data.role, csrf: data.csrfToken || null,
    });
    const who = $("who");
    who.textContent = data.authEnabled ? `Signed in (${data.role === "read" ? "read only" : "admin"})` : "";
    who.classList.toggle("hidden", !data.authEnabled);
    $("logout").classList.toggle("hidden", !data.csrfToken);
  }

  function signedOut() {
    Object.assign(auth, { known: true, signedIn: false, role: null, csrf: null });
    $("who").classList.add("hidden");
    $("logout").classList.add("hidden");
    banner("");
    live("Signed out", false);
    show("login");
    $("login-key").focus();
  }

  async function loadSession() {
    try {
      setSession((await api("/dashboard/session")).data);
    } catch (e) {
      if (e.status === 401) signedOut();
      else throw e;
    }
  }

  async function signIn(ev) {
    ev.preventDefault();
    const input = $("login-key");
    const error = $("login-error");
    error.textContent = "";
    try {
      const body = await api("/dashboard/login", "POST", { key: input.value.trim() });
      input.value = "";
      setSession(body.data);
      await refresh();
    } catch (e) {
      error.textContent = e.status === 401 ? "Wrong key." : explain(e);
    }
  }

  async function signOut() {
    try {
      await api("/dashboard/logout", "POST");
    } catch (e) {
      banner(explain(e));
      return;
    }
    signedOut();
  }

  // -- routing ----------------------------------------------------------------------------

  function parseRoute() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    if (parts[0] === "queue" && parts[1]) {
      if (parts[2] === "job" && parts[3]) return { view: "job", queue: parts[1], job: parts.slice(3).join("/") };
      const st = STATES.includes(parts[2]) ? parts[2] : "waiting";
      return { view: "queue", queue: parts[1], status: st, page: Math.max(0, parseInt(parts[3] || "0", 10) || 0) };
    }
    return { view: "overview" };
  }

  function href(route) {
    const e = encodeURIComponent;
    if (route.view === "queue") return `#/queue/${e(route.queue)}/${route.status || "waiting"}/${route.page || 0}`;
    if (route.view === "job") return `#/queue/${e(route.queue)}/job/${e(route.job)}`;
    return "#/";
  }

  function show(view) {
    for (const id of ["view-login", "view-overview", "view-queue", "view-job"]) {
      $(id).classList.toggle("hidden", id !== `view-${view}`);
    }
  }

  // -- overview ---------------------------------------------------------------------------

  function sparkline(series) {
    const ns = "http://www.w3.org/2000/svg";
    const w = 120, hgt = 28;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
    svg.setAttribute("class", "spark");
    svg.setAttribute("role", "img");
    if (!series) return svg;
    const done = series.completed.reduce((a, b) => a + b, 0);
    const failed = series.failed.reduce((a, b) => a + b, 0);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${done} completed, ${failed} failed in the last hour`;
    svg.append(title);
    const max = Math.max(1, ...series.completed, ...series.failed);
    const n = series.completed.length;
    if (done + failed === 0) svg.classList.add("idle");
    // Failed first, so completed (usually the larger) is drawn on top where they meet at 0.
    for (const [values, cls] of [[series.failed, "fail"], [series.completed, "ok"]]) {
      const pts = values.map((v, i) => {
        const x = n > 1 ? (i / (n - 1)) * (w - 2) + 1 : w / 2;
        const y = hgt - 2 - (v / max) * (hgt - 4);
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      });
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", pts.join(" "));
      line.setAttribute("class", cls);
      svg.append(line);
    }
    return svg;
  }

  function card(label, value, cls) {
    return h("div", { class: `card ${cls || ""}`, data: { card: label.toLowerCase() } },
      h("div", { class: "card-value", text: fmtNum(value) }),
      h("div", { class: "card-label", text: label }));
  }

  async function loadOverview() {
    const wantSparks = !state.sparks || Date.now() - state.sparksAt > SPARK_MS;
    const [overview, health, schedules, sparks] = await Promise.all([
      api("/api/queue-dashboard/overview"),
      api("/api/queue-dashboard/health"),
      api("/api/queue-dashboard/scheduled-jobs"),
      wantSparks ? api("/api/queue-dashboard/throughput?minutes=60") : null,
    ]);
    if (sparks) {
      state.sparks = sparks.data;
      state.sparksAt = Date.now();
    }
    const data = overview.data;
    const t = data.metrics.total;
    const healthData = health.data.queues;
    render($("cards"), [t, healthData.status], () => [
      card("Waiting", t.totalWaiting),
      card("Active", t.totalActive),
      card("Completed", t.totalCompleted, "ok"),
      card("Failed", t.totalFailed, t.totalFailed ? "bad" : ""),
      card("Delayed", t.totalDelayed),
      card("Queues", t.totalQueues),
      h("div", { class: `card ${healthData.status === "up" ? "ok" : "bad"}`, data: { card: "health" } },
        h("div", { class: "card-value", text: healthData.status === "up" ? "Up" : "Down" }),
        h("div", { class: "card-label", text: "Health" })),
    ]);
    const unhealthy = Object.entries(healthData.queues).filter(([, v]) => !v.healthy);
    render($("alerts"), [data.alerts, unhealthy], () => {
      const items = data.alerts.map((a) =>
        h("li", { class: `alert ${a.level}`, data: { queue: a.queue, rule: a.rule } },
          h("span", { class: `badge ${a.level}`, text: a.level }),
          h("a", { href: href({ view: "queue", queue: a.queue }), text: a.queue }),
          h("span", { text: ` ${a.message}: ${a.value} (threshold ${a.threshold})` })));
      for (const [name, v] of unhealthy) {
        for (const reason of v.reasons.filter((r) => r.startsWith("Jobs are waiting"))) {
          items.push(h("li", { class: "alert critical", data: { queue: name } },
            h("span", { class: "badge critical", text: "down" }),
            h("a", { href: href({ view: "queue", queue: name }), text: name }),
            h("span", { text: ` ${reason}` })));
        }
      }
      return items.length ? items : [h("li", { class: "empty", text: "No alerts." })];
    });
    const sparkSeries = state.sparks ? state.sparks.queues : {};
    render($("queues-body"), [data.stats, healthData.queues, state.sparksAt], () =>
      data.stats.map((s) => {
        const healthy = !healthData.queues[s.name] || healthData.queues[s.name].healthy;
        const cell = (field, label, value) =>
          h("td", { class: "num", "data-label": label, data: { field } }, fmtNum(value));
        return h("tr", { data: { queue: s.name }, class: healthy ? "" : "unhealthy" },
          h("td", { class: "title" }, h("a", { href: href({ view: "queue", queue: s.name }), text: s.name })),
          cell("waiting", "Waiting", s.waiting + (s.prioritized || 0)),
          cell("active", "Active", s.active),
          cell("completed", "Completed", s.completed),
          cell("failed", "Failed", s.failed),
          cell("delayed", "Delayed", s.delayed),
          h("td", { "data-label": "State", data: { field: "paused" } },
            h("span", { class: `badge ${s.paused ? "warning" : "ok"}`, text: s.paused ? "paused" : "running" })),
          h("td", { "data-label": "Last hour" }, sparkline(sparkSeries[s.name])),
          h("td", { class: "row-actions" }, pauseButton(s.name, s.paused)));
      }));
    render($("schedules-body"), schedules.data, () =>
      schedules.data.length ? schedules.data.map(scheduleRow)
        : [h("tr", {}, h("td", { colspan: 7, class: "empty", text: "No schedules configured." }))]);
  }

  function pauseButton(name, paused) {
    return h("button", {
      type: "button",
      data: { action: paused ? "resume" : "pause", queue: name },
      text: paused ? "Resume" : "Pause",
      onclick: () => act(`${paused ? "Resume" : "Pause"} queue "${name}"?`, `${q(name)}/${paused ? "resume" : "pause"}`),
    });
  }

  function scheduleRow(s) {
    const base = `/api/queue-dashboard/scheduled-jobs/${encodeURIComponent(s.name)}`;
    return h("tr", { data: { schedule: s.name } },
      h("td", { class: "title" }, h("strong", { text: s.name }), h("div", { class: "muted", text: s.description })),
      h("td", { "data-label": "Queue / job" },
        h("a", { href: href({ view: "queue", queue: s.queueName }), text: s.queueName }),
        h("div", { class: "muted", text: s.jobType })),
      h("td", { "data-label": "Cron" }, h("code", { class: "nowrap", text: s.cronExpression }),
        h("div", { class: "muted", text: s.timezone })),
      h("td", { "data-label": "Next run", data: { field: "nextRun" }, text: s.enabled ? fmtTime(s.nextRun) : "—" }),
      h("td", { "data-label": "Last run", data: { field: "lastRun" }, text: fmtTime(s.lastRun) }),
      h("td", { "data-label": "State", data: { field: "enabled" } }, h("span", { class: `badge ${s.enabled ? "ok" : "warning"}`, text: s.enabled ? "enabled" : "disabled" })),
      h("td", { class: "row-actions" },
        h("button", {
          type: "button",
          text: s.enabled ? "Disable" : "Enable",
          onclick: () => act(`${s.enabled ? "Disable" : "Enable"} schedule "${s.name}"?`,
            `${base}/${s.enabled ? "disable" : "enable"}`),
        }),
        h("button", {
          type: "button",
          text: "Run now",
          onclick: () => act(`Run "${s.name}" now (one ${s.jobType} job in ${s.queueName})?`, `${base}/run`),
        })));
  }

  // -- one queue --------------------------------------------------------------------------

  async function loadQueue(route) {
    const start = route.page * PAGE_SIZE;
    const [stats, jobs] = await Promise.all([
      api(`${q(route.queue)}/stats`),
      api(`${q(route.queue)}/jobs?status=${encodeURIComponent(route.status)}&start=${start}&end=${start + PAGE_SIZE - 1}`),
    ]);
    const s = stats.data;
    $("q-title").textContent = route.queue;
    const counts = {
      waiting: s.waiting, active: s.active, delayed: s.delayed, prioritized: s.prioritized,
      completed: s.completed, failed: s.failed, "waiting-children": s.waitingChildren,
    };
    render($("q-counts"), [counts, s.paused], () => [
      h("span", { class: `badge ${s.paused ? "warning" : "ok"}`, text: s.paused ? "paused" : "running" }),
    ]);
    const pause = $("q-pause");
    pause.textContent = s.paused ? "Resume" : "Pause";
    pause.onclick = () => act(`${s.paused ? "Resume" : "Pause"} queue "${route.queue}"?`,
      `${q(route.queue)}/${s.paused ? "resume" : "pause"}`);
    $("q-retry-all").disabled = !s.failed;
    $("q-retry-all").onclick = () => act(`Retry all ${s.failed} failed jobs of "${route.queue}"?`,
      `${q(route.queue)}/retry-failed`);
    $("q-clean").onclick = () => {
      const st = $("q-clean-state").value;
      act(`Remove every ${st} job of "${route.queue}"? This cannot be undone.`,
        `${q(route.queue)}/clean?status=${encodeURIComponent(st)}`);
    };
    render($("state-tabs"), [route, counts], () => STATES.map((st) =>
      h("a", {
        href: href({ view: "queue", queue: route.queue, status: st, page: 0 }),
        role: "tab",
        class: `tab ${st === route.status ? "active" : ""}`,
        "aria-selected": st === route.status ? "true" : "false",
        data: { state: st },
      }, `${st} `, h("span", { class: "count", text: fmtNum(counts[st] ?? 0) }))));
    const total = counts[route.status] ?? 0;
    render($("jobs-body"), [route, jobs.data], () =>
      jobs.data.length ? jobs.data.map((j) => jobRow(route.queue, j))
        : [h("tr", {}, h("td", { colspan: 6, class: "empty", text: `No ${route.status} jobs.` }))]);
    const last = Math.min(start + jobs.data.length, Math.max(total, start + jobs.data.length));
    $("page-info").textContent = jobs.data.length ? `${start + 1}–${last} of ${fmtNum(total)}` : `0 of ${fmtNum(total)}`;
    $("page-prev").disabled = route.page === 0;
    $("page-next").disabled = start + PAGE_SIZE >= total;
    $("page-prev").onclick = () => { location.hash = href({ ...route, page: route.page - 1 }); };
    $("page-next").onclick = () => { location.hash = href({ ...route, page: route.page + 1 }); };
  }

  function jobActions(queue, j) {
    const base = `${q(queue)}/jobs/${encodeURIComponent(j.id)}`;
    const out = [];
    if (j.status === "failed") {
      out.push(h("button", { type: "button", data: { action: "retry" }, text: "Retry",
        onclick: () => act(`Retry job ${j.id}?`, `${base}/retry`) }));
    }
    if (j.status === "delayed") {
      out.push(h("button", { type: "button", data: { action: "promote" }, text: "Promote",
        onclick: () => act(`Run delayed job ${j.id} now?`, `${base}/promote`) }));
    }
    if (j.status !== "active") {
      out.push(h("button", { type: "button", class: "danger", data: { action: "remove" }, text: "Remove",
        onclick: async () => {
          const removed = await act(`Remove job ${j.id}? This cannot be undone.`, base, "DELETE");
          if (removed && parseRoute().view === "job") {
            location.hash = href({ view: "queue", queue, status: j.status });
          }
        } }));
    }
    return out;
  }

  function jobRow(queue, j) {
    return h("tr", { data: { job: j.id } },
      h("td", { class: "title" }, h("a", { href: href({ view: "job", queue, job: j.id }), text: j.id })),
      h("td", { "data-label": "Name", text: j.name }),
      h("td", { "data-label": "Created", text: fmtTime(j.createdAt) }),
      h("td", { class: "num", "data-label": "Attempts", text: fmtNum(j.attempts) }),
      h("td", { class: "preview wide", "data-label": "Data" }, h("code", { text: preview(j.data) })),
      h("td", { class: "row-actions" }, jobActions(queue, j)));
  }

  // -- one job ----------------------------------------------------------------------------

  async function loadJob(route) {
    const base = `${q(route.queue)}/jobs/${encodeURIComponent(route.job)}`;
    const [job, logs] = await Promise.all([api(base), api(`${base}/logs?start=0&end=199`).catch(() => null)]);
    const j = job.data;
    const link = $("job-queue-link");
    link.textContent = route.queue;
    link.setAttribute("href", href({ view: "queue", queue: route.queue, status: j.status }));
    $("job-title").textContent = j.id;
    const logData = logs ? logs.data : { logs: [], count: 0 };
    render($("job-detail"), [j, logData, [...state.expanded]], () => {
      const field = (label, value) => [h("dt", { text: label }), h("dd", { text: value })];
      const parts = [
        h("div", { class: "job-head" },
          h("h2", {}, h("span", { text: j.name }), " ", h("span", { class: `badge ${j.status}`, text: j.status })),
          h("div", { class: "actions" }, jobActions(route.queue, j))),
        h("dl", { class: "facts" },
          field("Id", j.id), field("Attempts", fmtNum(j.attempts)), field("Progress", pretty(j.progress)),
          field("Priority", fmtNum(j.priority)), field("Delay", `${fmtNum(j.delay)} ms`),
          field("Created", fmtTime(j.createdAt)), field("Processed", fmtTime(j.processedOn)),
          field("Finished", fmtTime(j.finishedOn))),
      ];
      if (j.failedReason) parts.push(h("h3", { text: "Failed reason" }), longText("failedReason", j.failedReason));
      parts.push(h("h3", { text: "Data" }), longText("data", pretty(j.data)));
      if (j.returnValue !== null && j.returnValue !== undefined) {
        parts.push(h("h3", { text: "Return value" }), longText("returnValue", pretty(j.returnValue)));
      }
      if (j.stacktrace && j.stacktrace.length) {
        parts.push(h("h3", { text: "Stack trace" }), longText("stacktrace", j.stacktrace.join("\n\n")));
      }
      parts.push(h("h3", { text: `Logs (${logData.count})` }),
        logData.count ? longText("logs", logData.logs.join("\n")) : h("p", { class: "muted", text: "No log lines." }));
      parts.push(h("h3", { text: "Options" }), longText("opts", pretty(j.opts)));
      return parts;
    });
  }

  // -- refresh loop -----------------------------------------------------------------------

  async function refresh() {
    if (state.busy) {
      state.again = true; // run once more when the current refresh ends
      return;
    }
    state.busy = true;
    if (!auth.known) await loadSession().catch((e) => banner(explain(e)));
    if (!auth.signedIn) {
      state.busy = false;
      return;
    }
    const route = parseRoute();
    if (!state.route || href(state.route) !== href(route)) {
      if (!state.route || state.route.job !== route.job) state.expanded.clear();
      state.route = route;
    }
    show(route.view);
    try {
      if (route.view === "queue") await loadQueue(route);
      else if (route.view === "job") await loadJob(route);
      else await loadOverview();
      live(`Updated ${new Date().toLocaleTimeString()}`, true);
      // Clear only an error this loop showed; an action's error stays until the next action.
      if (state.loadError) {
        state.loadError = false;
        banner("");
      }
    } catch (e) {
      live("Not updated", false);
      if (e.status === 401) signedOut(); // the session expired or its key was removed
      else {
        state.loadError = true;
        if (route.view === "job" && e.code === "JOB_NOT_FOUND") banner(`Job "${route.job}" was not found (removed?).`);
        else banner(explain(e));
      }
    } finally {
      state.busy = false;
      if (state.again) {
        state.again = false;
        setTimeout(refresh, 0);
      }
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      schedule();
    }, POLL_MS);
  }

  function init() {
    localStorage.removeItem(OLD_KEY_STORE);
    $("login-form").addEventListener("submit", signIn);
    $("logout").addEventListener("click", signOut);
    $("search-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const id = $("search-id").value.trim();
      const route = parseRoute();
      if (!id || route.view !== "queue") return;
      try {
        await api(`${q(route.queue)}/jobs/${encodeURIComponent(id)}`);
        location.hash = href({ view: "job", queue: route.queue, job: id });
      } catch (e) {
        banner(e.code === "JOB_NOT_FOUND" ? `No job "${id}" in ${route.queue}.` : explain(e));
      }
    });
    window.addEventListener("hashchange", () => {
      banner("");
      refresh();
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refresh();
    });
    refresh();
    schedule();
  }

  init();
})();
