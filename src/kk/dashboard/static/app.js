// KK Queues dashboard: plain JS, no build step, no third-party code.
// Every value from the API is untrusted (job data is whatever a client sent): the DOM is
// built with textContent and attributes only: no string is ever parsed as HTML.
// Every word shown comes from the catalogues in i18n/ through t("key").
"use strict";

(() => {
  const SPARK_MS = 15000;
  const PAGE_SIZE = 25;
  const PREVIEW_CHARS = 120;
  const REASON_CHARS = 160;
  const TRUNCATE_CHARS = 2000;
  const TRACE_CHARS = 20000;
  const INTERVALS = [2, 5, 10, 30, 60]; // seconds between live updates
  const DEFAULT_INTERVAL = 5;
  const STATES = ["waiting", "active", "delayed", "prioritized", "completed", "failed", "waiting-children"];
  const CLEANABLE = ["completed", "failed", "delayed", "waiting", "prioritized"];
  const GRACES = [["any", 0], ["hour", 3600e3], ["day", 86400e3], ["week", 7 * 86400e3]];
  const LANGS = ["en", "zh-CN"];
  const STORE = { lang: "kk.lang", interval: "kk.refreshSeconds", paused: "kk.refreshPaused" };
  const OLD_KEY_STORE = "kk.apiKey"; // where earlier versions kept a key: removed at start
  const SEARCH_LIMIT = 500; // matches a search shows (all on one list, so all can be ticked)
  const BULK_MAX = 1000; // ids one bulk action takes (the server's bound)
  // Live lists: a queue view follows the queue's event stream (SSE) and refreshes on its
  // events, at most once per LIVE_MS; the interval poll is the fallback. While the stream
  // is up, a slow tick still redraws relative times and whatever sends no event.
  const LIVE_MS = 500;
  const STREAM_IDLE_S = 60;
  const STREAM_RETRY_MS = 30000; // a stream the server refused is asked for again after this
  const STREAM_EVENTS = ["added", "waiting", "active", "completed", "failed", "delayed", "removed", "cleaned",
    "paused", "resumed", "stalled", "retries-exhausted", "waiting-children", "duplicated", "deduplicated", "debounced"];
  // A bulk action, the states it applies to and its words.
  const BULK = {
    retry: { states: ["failed"], ask: "bulk.confirmRetry", done: "bulk.doneRetry" },
    promote: { states: ["delayed"], ask: "bulk.confirmPromote", done: "bulk.donePromote" },
    remove: { states: STATES.filter((st) => st !== "active"), ask: "bulk.confirmRemove", done: "bulk.doneRemove" },
  };

  const $ = (id) => document.getElementById(id);
  // The signed-in session: its role and the CSRF token every change must carry. The session
  // itself is an HttpOnly cookie this script never sees.
  const auth = { known: false, signedIn: false, enabled: true, role: null, csrf: null };
  const state = {
    route: null, sparks: null, sparksAt: 0, system: null, expanded: new Set(), timer: null, busy: false, again: false,
    shown: null, // href of the route whose data is on screen; actions check it before they run
    loadError: false, // the banner shows an error of the refresh loop, not of an action
    updatedAt: null,
  };
  const prefs = { interval: DEFAULT_INTERVAL, paused: false };
  // The list's search and ticked jobs, kept while the same queue and state are shown.
  const pick = { key: null, ids: new Set(), shown: [], found: null, query: "" };
  // The queue's event stream: `live` once it is open and driving the updates.
  const stream = { es: null, queue: null, live: false, pending: null, last: 0, refused: null, refusedAt: 0 };
  // The add form on screen: the route and language it was built for, and its fields.
  const adder = { key: null, route: null, form: null, fields: [] };

  // -- language -----------------------------------------------------------------------------

  const i18n = { lang: "en", en: {}, cur: {} };

  function t(key, vars) {
    const text = i18n.cur[key] ?? i18n.en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (m, name) => (vars && name in vars ? String(vars[name]) : m));
  }

  // English says "1 job" and "2 jobs"; Chinese has one form. Both keys are in both
  // catalogues; the language's plural rule picks.
  const pluralRules = {};
  function tn(count, oneKey, otherKey, vars) {
    const rules = (pluralRules[i18n.lang] ??= new Intl.PluralRules(i18n.lang));
    return t(rules.select(count) === "one" ? oneKey : otherKey, { ...vars, count: fmtNum(count) });
  }

  function pickLang() {
    const saved = localStorage.getItem(STORE.lang);
    if (LANGS.includes(saved)) return saved;
    for (const l of navigator.languages || [navigator.language || "en"]) {
      const lower = String(l).toLowerCase();
      if (lower.startsWith("zh")) return "zh-CN";
      if (lower.startsWith("en")) return "en";
    }
    return "en";
  }

  async function catalogue(lang) {
    const res = await fetch(`/dashboard/static/i18n/${lang}.json`, { credentials: "same-origin" });
    if (!res.ok) throw new Error(`catalogue ${lang}: HTTP ${res.status}`);
    return res.json();
  }

  async function setLang(lang) {
    if (!Object.keys(i18n.en).length) i18n.en = await catalogue("en");
    i18n.cur = lang === "en" ? i18n.en : await catalogue(lang);
    i18n.lang = lang;
    document.documentElement.lang = lang;
    $("lang").value = lang;
    document.title = t("app.title");
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
      el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder));
    }
    fillSelects();
    // Everything drawn in the old language is drawn again.
    for (const el of document.querySelectorAll("[data-sig]")) delete el.dataset.sig;
    if (auth.known) showWho();
    showLive();
  }

  // -- formatting (Intl, per language) ---------------------------------------------------------

  function fmtNum(n) {
    return typeof n === "number" ? new Intl.NumberFormat(i18n.lang).format(n) : String(n ?? "—");
  }

  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : new Intl.DateTimeFormat(i18n.lang, { dateStyle: "medium", timeStyle: "medium" }).format(d);
  }

  function fmtClock(d) {
    return new Intl.DateTimeFormat(i18n.lang, { timeStyle: "medium" }).format(d);
  }

  function fmtUnit(value, unit, digits = 0) {
    return new Intl.NumberFormat(i18n.lang, {
      style: "unit", unit, unitDisplay: "short", maximumFractionDigits: digits,
    }).format(value);
  }

  // "in 5 minutes", "3 hours ago", "5 分钟后"...
  function fmtRelative(iso) {
    const d = new Date(iso);
    if (!iso || isNaN(d)) return "";
    const secs = (d.getTime() - Date.now()) / 1000;
    const rtf = new Intl.RelativeTimeFormat(i18n.lang, { numeric: "auto" });
    const steps = [[60, "second"], [3600, "minute", 60], [86400, "hour", 3600], [Infinity, "day", 86400]];
    for (const [limit, unit, size = 1] of steps) {
      if (Math.abs(secs) < limit) return rtf.format(Math.round(secs / size), unit);
    }
    return "";
  }

  function fmtDuration(ms) {
    if (typeof ms !== "number" || !isFinite(ms) || ms < 0) return "—";
    if (ms < 1000) return fmtUnit(ms, "millisecond");
    if (ms < 60e3) return fmtUnit(ms / 1000, "second", 1);
    if (ms < 3600e3) return `${fmtUnit(Math.floor(ms / 60e3), "minute")} ${fmtUnit(Math.round((ms % 60e3) / 1000), "second")}`;
    return `${fmtUnit(Math.floor(ms / 3600e3), "hour")} ${fmtUnit(Math.round((ms % 3600e3) / 60e3), "minute")}`;
  }

  function between(from, to) {
    if (!from || !to) return null;
    return new Date(to).getTime() - new Date(from).getTime();
  }

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
    const sig = JSON.stringify([i18n.lang, auth.role, signature]);
    if (container.dataset.sig === sig) return;
    container.dataset.sig = sig;
    container.replaceChildren(...[].concat(build()).flat(2).filter((c) => c !== null && c !== undefined));
  }

  function pretty(value) {
    if (value === undefined) return "";
    try {
      return typeof value === "string" ? value : JSON.stringify(value, null, 2);
    } catch (e) {
      return String(value);
    }
  }

  function clip(text, max) {
    const s = String(text ?? "");
    return s.length > max ? s.slice(0, max) + "…" : s;
  }

  function preview(value) {
    return clip(typeof value === "string" ? value : JSON.stringify(value) || "", PREVIEW_CHARS);
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
      text: t("job.showAll", { count: fmtNum(full.length - TRUNCATE_CHARS) }),
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

  let liveState = { key: "live.connecting", ok: true };

  function live(key, ok) {
    liveState = { key, ok };
    showLive();
  }

  function showLive() {
    const el = $("live");
    const time = state.updatedAt ? fmtClock(state.updatedAt) : "—";
    const key = liveState.key === "live.updated" && prefs.paused ? "live.paused" : liveState.key;
    el.textContent = t(key, { time });
    el.classList.toggle("bad", !liveState.ok);
    const mark = $("live-mark");
    mark.classList.toggle("hidden", !(stream.live && !prefs.paused));
    mark.title = t("live.streamTitle");
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
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      const err = new Error(t("error.network"));
      err.status = 0;
      throw err;
    }
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok || (body && body.success === false)) {
      const err = new Error((body && body.error) || t("error.http", { status: res.status }));
      err.status = res.status;
      err.code = body && body.code;
      err.details = body && Array.isArray(body.details) ? body.details : null;
      throw err;
    }
    return body;
  }

  const q = (name) => `/api/queues/${encodeURIComponent(name)}`;
  const readOnly = () => auth.role === "read";

  // A change, asked first and refreshed after. `route` is the view the button was drawn for:
  // if another view is on screen (or loading) by the time it is clicked, nothing is sent.
  // Resolves to whether the action succeeded.
  async function act(route, { ask, path, method = "POST", done }) {
    const current = href(parseRoute());
    if (state.shown !== href(route) || current !== href(route)) {
      banner(t("error.stale"));
      return false;
    }
    if (readOnly()) {
      banner(t("error.readOnly"));
      return false;
    }
    if (!window.confirm(ask)) return false;
    let ok = false;
    try {
      const answer = await api(path, method);
      banner(typeof done === "function" ? done(answer) : done, "ok");
      ok = true;
    } catch (e) {
      banner(explain(e));
    }
    await refresh();
    return ok;
  }

  function explain(e, route) {
    if (e.status === 401) return t("error.signIn");
    if (e.status === 403 && readOnly()) return t("error.readOnly");
    if (route && e.code && i18n.en[`error.${e.code}`]) return t(`error.${e.code}`, route);
    // Other answers of the server are shown as it wrote them.
    return e.message || String(e);
  }

  // -- sign-in ----------------------------------------------------------------------------

  function setSession(data) {
    Object.assign(auth, {
      known: true, signedIn: true, enabled: data.authEnabled, role: data.role, csrf: data.csrfToken || null,
    });
    showWho();
    $("logout").classList.toggle("hidden", !data.csrfToken);
  }

  function showWho() {
    const who = $("who");
    who.textContent = auth.signedIn && auth.enabled ? t("who.signedIn", { role: t(`role.${auth.role}`) }) : "";
    who.classList.toggle("hidden", !(auth.signedIn && auth.enabled));
    who.classList.toggle("readonly", readOnly());
    document.body.classList.toggle("readonly", readOnly());
  }

  function signedOut() {
    Object.assign(auth, { known: true, signedIn: false, role: null, csrf: null });
    showWho();
    $("logout").classList.add("hidden");
    banner("");
    closeStream();
    live("live.signedOut", false);
    state.shown = null;
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
      error.textContent = e.status === 401 ? t("login.wrong") : explain(e);
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
    let parts;
    try {
      parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    } catch (e) {
      return { view: "overview" };
    }
    if (parts[0] === "queue" && parts[1]) {
      if (parts[2] === "job" && parts[3]) return { view: "job", queue: parts[1], job: parts.slice(3).join("/") };
      if (parts[2] === "add") return { view: "add", queue: parts[1], job: parts[3] ? parts.slice(3).join("/") : null };
      const st = STATES.includes(parts[2]) ? parts[2] : "waiting";
      return { view: "queue", queue: parts[1], status: st, page: Math.max(0, parseInt(parts[3] || "0", 10) || 0) };
    }
    return { view: "overview" };
  }

  function href(route) {
    const e = encodeURIComponent;
    if (route.view === "queue") return `#/queue/${e(route.queue)}/${route.status || "waiting"}/${route.page || 0}`;
    if (route.view === "job") return `#/queue/${e(route.queue)}/job/${e(route.job)}`;
    if (route.view === "add") return `#/queue/${e(route.queue)}/add${route.job ? `/${e(route.job)}` : ""}`;
    return "#/";
  }

  function show(view) {
    for (const id of ["view-login", "view-error", "view-overview", "view-queue", "view-job", "view-add"]) {
      $(id).classList.toggle("hidden", id !== `view-${view}`);
    }
  }

  // Forget everything the previous view drew, so no number, job or button of it can be seen
  // or clicked while (or after) another one loads.
  function clearViews() {
    state.shown = null;
    show(null);
    const ids = ["cards", "alerts", "queues-body", "schedules-body", "redis-facts", "workers-body", "q-title", "q-counts", "state-tabs",
      "jobs-head", "jobs-body", "jobs-total", "page-info", "job-queue-link", "job-title", "job-detail", "match-info", "bulk-count",
      "add-queue-link", "add-title", "add-hint", "add-fields", "add-errors", "add-result"];
    for (const id of ids) {
      $(id).replaceChildren();
      delete $(id).dataset.sig;
    }
    for (const id of ["q-pause", "q-retry-all", "q-clean", "q-add", "page-prev", "page-next", "bulk-matches", "bulk-retry", "bulk-promote", "bulk-remove", "add-example"]) {
      $(id).onclick = null;
    }
    forgetForm();
  }

  function showError(route, e) {
    const missing = { QUEUE_NOT_FOUND: "error.queueTitle", INVALID_QUEUE_NAME: "error.queueTitle", JOB_NOT_FOUND: "error.jobTitle" };
    clearViews();
    $("error-title").textContent = t(missing[e.code] || "error.loadTitle");
    $("error-text").textContent = explain(e, route);
    const back = $("error-back");
    if (route.view === "job" && e.code === "JOB_NOT_FOUND") {
      back.setAttribute("href", href({ view: "queue", queue: route.queue }));
      back.dataset.i18n = "error.backQueue";
    } else {
      back.setAttribute("href", "#/");
      back.dataset.i18n = "error.back";
    }
    back.textContent = t(back.dataset.i18n);
    show("error");
  }

  // Thrown when the route changed while its data was on the way: that data is dropped.
  class Stale extends Error {}

  function stillOn(route) {
    if (href(parseRoute()) !== href(route)) throw new Stale();
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
    title.textContent = t("spark.title", { done: fmtNum(done), failed: fmtNum(failed) });
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

  function card(name, value, cls) {
    return h("div", { class: `card ${cls || ""}`, data: { card: name } },
      h("div", { class: "card-value", text: fmtNum(value) }),
      h("div", { class: "card-label", text: t(`card.${name}`) }));
  }

  function badge(cls, key) {
    return h("span", { class: `badge ${cls}`, text: t(key) });
  }

  async function loadOverview(route) {
    const wantSparks = !state.sparks || Date.now() - state.sparksAt > SPARK_MS;
    const [overview, health, schedules, sparks, system] = await Promise.all([
      api("/api/queue-dashboard/overview"),
      api("/api/queue-dashboard/health"),
      api("/api/queue-dashboard/scheduled-jobs"),
      wantSparks ? api("/api/queue-dashboard/throughput?minutes=60") : null,
      wantSparks ? api("/api/queue-dashboard/system").catch(() => null) : null,
    ]);
    stillOn(route);
    if (sparks) {
      state.sparks = sparks.data;
      state.sparksAt = Date.now();
    }
    if (system) state.system = system.data;
    renderSystem(state.system);
    const data = overview.data;
    const tot = data.metrics.total;
    const healthData = health.data.queues;
    render($("cards"), [tot, healthData.status], () => [
      card("waiting", tot.totalWaiting),
      card("active", tot.totalActive),
      card("completed", tot.totalCompleted, "ok"),
      card("failed", tot.totalFailed, tot.totalFailed ? "bad" : ""),
      card("delayed", tot.totalDelayed),
      card("queues", tot.totalQueues),
      h("div", { class: `card ${healthData.status === "up" ? "ok" : "bad"}`, data: { card: "health" } },
        h("div", { class: "card-value", text: t(healthData.status === "up" ? "health.up" : "health.down") }),
        h("div", { class: "card-label", text: t("card.health") })),
    ]);
    const unhealthy = Object.entries(healthData.queues).filter(([, v]) => !v.healthy);
    render($("alerts"), [data.alerts, unhealthy], () => {
      const items = data.alerts.map((a) => {
        const known = i18n.en[`alert.rule.${a.rule}`] !== undefined;
        const message = known ? t(`alert.rule.${a.rule}`) : a.message;
        return h("li", { class: `alert ${a.level}`, data: { queue: a.queue, rule: a.rule } },
          badge(a.level, `level.${a.level}`),
          h("a", { href: href({ view: "queue", queue: a.queue }), text: a.queue }),
          // A paused queue has no number to show: "Queue is paused", not "…: 1 (threshold 1)".
          h("span", { text: a.rule === "paused" ? message
            : t("alert.line", { message, value: fmtNum(a.value), threshold: fmtNum(a.threshold) }) }));
      });
      for (const [name, v] of unhealthy) {
        if (!(v.reasonCodes || []).includes("no_worker")) continue;
        items.push(h("li", { class: "alert critical", data: { queue: name, rule: "no_worker" } },
          badge("critical", "level.down"),
          h("a", { href: href({ view: "queue", queue: name }), text: name }),
          h("span", { text: t("alert.noWorker") })));
      }
      return items.length ? items : [h("li", { class: "empty", text: t("alert.none") })];
    });
    const sparkSeries = state.sparks ? state.sparks.queues : {};
    render($("queues-body"), [data.stats, healthData.queues, state.sparksAt], () =>
      data.stats.map((s) => {
        const healthy = !healthData.queues[s.name] || healthData.queues[s.name].healthy;
        const cell = (field, value) =>
          h("td", { class: "num", "data-label": t(`col.${field}`), data: { field } }, fmtNum(value));
        return h("tr", { data: { queue: s.name }, class: healthy ? "" : "unhealthy" },
          h("td", { class: "title" }, h("a", { href: href({ view: "queue", queue: s.name }), text: s.name })),
          cell("waiting", s.waiting + (s.prioritized || 0)),
          cell("active", s.active),
          cell("completed", s.completed),
          cell("failed", s.failed),
          cell("delayed", s.delayed),
          h("td", { "data-label": t("col.state"), data: { field: "paused" } },
            badge(s.paused ? "warning" : "ok", s.paused ? "state.paused" : "state.running")),
          h("td", { "data-label": t("col.lastHour") }, sparkline(sparkSeries[s.name])),
          h("td", { class: "row-actions" }, readOnly() ? null : pauseButton(route, s.name, s.paused)));
      }));
    render($("schedules-body"), [schedules.data, clockTick()], () =>
      schedules.data.length ? schedules.data.map((s) => scheduleRow(route, s))
        : [h("tr", {}, h("td", { colspan: 7, class: "empty", text: t("schedules.none") }))]);
  }

  function fmtBytes(n) {
    if (typeof n !== "number") return "—";
    const units = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return fmtUnit(n, units[i], i ? 1 : 0);
  }

  // Redis and the workers, refreshed with the sparklines (INFO and CLIENT LIST are not free).
  function renderSystem(sys) {
    render($("redis-facts"), [sys && sys.redis, Boolean(sys)], () => {
      if (!sys) return [];
      const r = sys.redis;
      if (!r) return [h("dt", { text: "" }), h("dd", { class: "muted", text: t("redis.unavailable") })];
      const fact = (key, value, extra) => [h("dt", { text: t(key) }), h("dd", { data: { fact: key } }, value, extra || null)];
      const memory = r.maxMemory ? t("redis.memoryOf", { used: fmtBytes(r.usedMemory), max: fmtBytes(r.maxMemory) })
        : t("redis.memoryNoLimit", { used: fmtBytes(r.usedMemory) });
      const risky = r.evictionPolicy && r.evictionPolicy !== "noeviction";
      return [
        fact("redis.version", [r.server === "valkey" ? "Valkey " : "", r.version, r.mode ? ` (${r.mode})` : ""].join("")),
        fact("redis.memory", memory),
        fact("redis.eviction", h("code", { text: r.evictionPolicy || "—" }),
          risky ? h("span", { class: "badge warning", text: t("redis.evictionBad") }) : null),
        fact("redis.clients", fmtNum(r.connectedClients)),
        fact("redis.uptime", fmtDuration((r.uptimeSeconds ?? NaN) * 1000)),
      ];
    });
    render($("workers-body"), [sys && sys.workers, Boolean(sys)], () => {
      if (!sys) return [];
      if (!sys.workers) return [h("tr", {}, h("td", { colspan: 6, class: "empty", text: t("workers.unknown") }))];
      if (!sys.workers.length) return [h("tr", {}, h("td", { colspan: 6, class: "empty", text: t("workers.none") }))];
      return sys.workers.map((w) => h("tr", { data: { worker: w.queues.join(" ") } },
        h("td", { class: "title", "data-label": t("col.host") }, h("code", { text: w.host })),
        h("td", { class: "num", "data-label": t("col.pid"), text: w.pid == null ? "—" : String(w.pid) }),
        h("td", { "data-label": t("col.queues") }, ...w.queues.flatMap((q, i) =>
          [i ? ", " : null, h("a", { href: href({ view: "queue", queue: q }), text: q })])),
        h("td", { "data-label": t("col.concurrency"),
          text: Object.entries(w.concurrency).map(([q, n]) => `${q} × ${fmtNum(n)}`).join(", ") || "—" }),
        h("td", { class: "num", "data-label": t("col.connections"), text: fmtNum(w.connections) }),
        h("td", { "data-label": t("col.lastSeen"), title: w.lastSeen ? fmtTime(w.lastSeen) : "",
          text: w.lastSeen ? fmtRelative(w.lastSeen) : "—" })));
    });
  }

  function pauseButton(route, name, paused) {
    const verb = paused ? "resume" : "pause";
    const key = paused ? "resumeQueue" : "pauseQueue";
    return h("button", {
      type: "button",
      data: { action: verb, queue: name },
      text: t(`action.${verb}`),
      onclick: () => act(route, {
        ask: t(`confirm.${key}`, { name }), path: `${q(name)}/${verb}`, done: t(`done.${key}`, { name }),
      }),
    });
  }

  function scheduleRow(route, s) {
    const base = `/api/queue-dashboard/scheduled-jobs/${encodeURIComponent(s.name)}`;
    const verb = s.enabled ? "disable" : "enable";
    const key = s.enabled ? "disableSchedule" : "enableSchedule";
    const vars = { name: s.name, job: s.jobType, queue: s.queueName };
    return h("tr", { data: { schedule: s.name } },
      h("td", { class: "title" }, h("strong", { text: s.name }), h("div", { class: "muted", text: s.description })),
      h("td", { "data-label": t("col.queueJob") },
        h("a", { href: href({ view: "queue", queue: s.queueName }), text: s.queueName }),
        h("div", { class: "muted", text: s.jobType })),
      h("td", { "data-label": t("col.cron") }, h("code", { class: "nowrap", text: s.cronExpression }),
        h("div", { class: "muted", text: s.timezone })),
      h("td", { "data-label": t("col.nextRun"), data: { field: "nextRun" } },
        s.enabled ? whenCell(s.nextRun) : "—"),
      h("td", { "data-label": t("col.lastRun"), data: { field: "lastRun" } }, whenCell(s.lastRun)),
      h("td", { "data-label": t("col.state"), data: { field: "enabled" } },
        badge(s.enabled ? "ok" : "warning", s.enabled ? "state.enabled" : "state.disabled")),
      h("td", { class: "row-actions" }, readOnly() ? null : [
        h("button", {
          type: "button",
          data: { action: verb },
          text: t(`action.${verb}`),
          onclick: () => act(route, {
            ask: t(`confirm.${key}`, vars), path: `${base}/${verb}`, done: t(`done.${key}`, vars),
          }),
        }),
        h("button", {
          type: "button",
          data: { action: "run" },
          text: t("action.runNow"),
          onclick: () => act(route, {
            ask: t("confirm.runSchedule", vars), path: `${base}/run`, done: t("done.runSchedule", vars),
          }),
        }),
      ]));
  }

  // Relative times ("5 minutes ago") are drawn again every 15 s even when nothing changed.
  const clockTick = () => Math.floor(Date.now() / 15000);

  // An absolute time with the relative one under it ("in 5 minutes").
  function whenCell(iso) {
    if (!iso) return "—";
    return [h("span", { class: "nowrap", text: fmtTime(iso) }), h("div", { class: "muted", text: fmtRelative(iso) })];
  }

  // -- one queue --------------------------------------------------------------------------

  function fillSelects() {
    const interval = $("refresh-interval");
    interval.replaceChildren(...INTERVALS.map((s) => h("option", { value: s, text: fmtUnit(s, "second") })));
    interval.value = String(prefs.interval);
    const toggle = $("refresh-toggle");
    toggle.textContent = t(prefs.paused ? "refresh.resume" : "refresh.pause");
    toggle.title = t(prefs.paused ? "refresh.resumeTitle" : "refresh.pauseTitle");
    toggle.setAttribute("aria-pressed", prefs.paused ? "true" : "false");
    const clean = $("q-clean-state");
    const picked = clean.value;
    clean.replaceChildren(...CLEANABLE.map((st) => h("option", { value: st, text: t(`state.${st}`) })));
    if (picked) clean.value = picked;
    const grace = $("q-clean-grace");
    const age = grace.value;
    grace.replaceChildren(...GRACES.map(([name, ms]) => h("option", { value: ms, data: { name }, text: t(`grace.${name}`) })));
    if (age) grace.value = age;
  }

  function maxAttempts(j) {
    const n = j.opts && Number(j.opts.attempts);
    return n > 0 ? n : 1;
  }

  function attemptsText(j) {
    const vars = { count: fmtNum(j.attempts), max: fmtNum(maxAttempts(j)) };
    // A failed job retried by hand runs past its attempts: "4 of 3" would read as a bug.
    return t(j.attempts > maxAttempts(j) ? "attempts.beyond" : "attempts.of", vars);
  }

  // The next run of a schedule is a delayed job BullMQ refuses to remove (disable the
  // schedule instead), and promoting it would use up the schedule's tick (the API refuses
  // it), so it is offered neither; the schedules view has "run now".
  function isScheduleRun(j) {
    return String(j.id).startsWith("repeat:") || Boolean(j.opts && (j.opts.repeat || j.opts.repeatJobKey));
  }

  function runsAt(j) {
    if (!j.createdAt) return null;
    return new Date(new Date(j.createdAt).getTime() + (j.delay || 0)).toISOString();
  }

  // Columns of a list, by the state it shows: what an operator looks for in that state.
  function columns(status) {
    const id = { key: "id", cell: null };
    const name = { key: "name", cell: (j) => h("td", { text: j.name }) };
    const created = { key: "created", cell: (j) => h("td", { text: fmtTime(j.createdAt) }) };
    const attempts = { key: "attempts", num: true, cell: (j) => h("td", { class: "num", text: attemptsText(j) }) };
    const data = { key: "data", cell: (j) => h("td", { class: "preview wide" }, h("code", { text: preview(j.data) })) };
    const took = { key: "took", num: true, cell: (j) => h("td", { class: "num", data: { field: "took" }, text: fmtDuration(between(j.processedOn, j.finishedOn)) }) };
    const finished = { key: "finished", cell: (j) => h("td", {}, whenCell(j.finishedOn)) };
    const byState = {
      failed: [id, name, { key: "reason", cell: (j) => h("td", { class: "reason wide", data: { field: "reason" }, title: clip(j.failedReason, 2000), text: clip(j.failedReason, REASON_CHARS) }) },
        { key: "failedAt", cell: (j) => h("td", { data: { field: "failedAt" } }, whenCell(j.finishedOn)) }, attempts, took],
      delayed: [id, name, { key: "runsAt", cell: (j) => h("td", { data: { field: "runsAt" } }, whenCell(runsAt(j))) }, attempts, data],
      completed: [id, name, finished, took, attempts, data],
      active: [id, name, { key: "started", cell: (j) => h("td", {}, whenCell(j.processedOn)) }, attempts, data],
    };
    return byState[status] || [id, name, created, attempts, data];
  }

  function listPath(route, start) {
    if (!pick.query) return `${q(route.queue)}/jobs?status=${encodeURIComponent(route.status)}&start=${start}&end=${start + PAGE_SIZE - 1}`;
    const params = new URLSearchParams({ state: route.status, q: pick.query, limit: String(SEARCH_LIMIT) });
    return `/api/queue-dashboard/queues/${encodeURIComponent(route.queue)}/search?${params}`;
  }

  async function loadQueue(route) {
    const listKey = `${route.queue}/${route.status}`;
    if (pick.key !== listKey) {
      Object.assign(pick, { key: listKey, shown: [], found: null, query: "" });
      pick.ids.clear();
      $("match-q").value = "";
    }
    const start = pick.query ? 0 : route.page * PAGE_SIZE;
    const [stats, listed] = await Promise.all([api(`${q(route.queue)}/stats`), api(listPath(route, start))]);
    stillOn(route);
    const found = pick.query ? listed.data : null;
    const jobs = found ? { data: found.jobs } : listed;
    const s = stats.data;
    $("q-title").textContent = route.queue;
    const counts = {
      waiting: s.waiting, active: s.active, delayed: s.delayed, prioritized: s.prioritized,
      completed: s.completed, failed: s.failed, "waiting-children": s.waitingChildren,
    };
    render($("q-counts"), [s.paused], () => [badge(s.paused ? "warning" : "ok", s.paused ? "state.paused" : "state.running")]);
    if (state.shown !== href(route)) {
      // First draw of this list: clean what it shows by default.
      $("q-clean-state").value = CLEANABLE.includes(route.status) ? route.status : "completed";
      $("q-clean-grace").value = "0";
    }
    $("q-actions").classList.toggle("hidden", readOnly());
    $("q-add").onclick = () => { location.hash = href({ view: "add", queue: route.queue }); };
    const verb = s.paused ? "resume" : "pause";
    const key = s.paused ? "resumeQueue" : "pauseQueue";
    const vars = { name: route.queue, queue: route.queue, count: fmtNum(s.failed) };
    const pause = $("q-pause");
    pause.textContent = t(`action.${verb}`);
    pause.dataset.action = verb;
    pause.onclick = () => act(route, { ask: t(`confirm.${key}`, vars), path: `${q(route.queue)}/${verb}`, done: t(`done.${key}`, vars) });
    $("q-retry-all").disabled = !s.failed;
    $("q-retry-all").onclick = () => act(route, {
      ask: t("confirm.retryAll", vars), path: `${q(route.queue)}/retry-failed`,
      done: (answer) => tn(answer?.data?.retried ?? 0, "done.retryAll.one", "done.retryAll", vars),
    });
    $("q-clean").onclick = () => {
      const st = $("q-clean-state").value;
      const ms = Number($("q-clean-grace").value) || 0;
      const cvars = { ...vars, state: t(`state.${st}`), age: ageText(ms) };
      const ask = t(ms ? "confirm.cleanOlder" : "confirm.clean", cvars);
      act(route, {
        ask, path: `${q(route.queue)}/clean?status=${encodeURIComponent(st)}&grace=${ms}`,
        done: (answer) => {
          const removed = Object.values(answer?.data ?? {}).reduce((a, b) => a + b, 0);
          return tn(removed, "done.clean.one", "done.clean", cvars);
        },
      });
    };
    render($("state-tabs"), [route, counts], () => STATES.map((st) =>
      h("a", {
        href: href({ view: "queue", queue: route.queue, status: st, page: 0 }),
        role: "tab",
        class: `tab ${st === route.status ? "active" : ""}`,
        "aria-selected": st === route.status ? "true" : "false",
        data: { state: st },
      }, `${t(`state.${st}`)} `, h("span", { class: "count", text: fmtNum(counts[st] ?? 0) }))));
    const cols = columns(route.status);
    const picking = !readOnly();
    // The tick boxes sit in the id column, so the columns stay what each state needs.
    const pickAllBox = () => h("input", { type: "checkbox", id: "pick-all", class: "pick", "aria-label": t("bulk.pickPage"), onchange: pickAll });
    render($("jobs-head"), [route.status], () => h("tr", {}, cols.map((c) =>
      h("th", { class: c.num ? "num" : "" }, c.key === "id" && picking ? pickAllBox() : null, t(`col.${c.key}`))), h("th", {})));
    const total = counts[route.status] ?? 0;
    const none = found ? t("match.none") : t("jobs.none", { state: t(`state.${route.status}`) });
    render($("jobs-body"), [route, jobs.data, clockTick(), pick.query], () =>
      jobs.data.length ? jobs.data.map((j) => jobRow(route, cols, j))
        : [h("tr", {}, h("td", { colspan: cols.length + 1, class: "empty", text: none }))]);
    pick.shown = jobs.data.map((j) => j.id);
    pick.found = found;
    $("jobs-total").textContent = tn(total, "jobs.total.one", "jobs.total");
    $("match-clear").classList.toggle("hidden", !found);
    $("match-info").textContent = found ? t(found.complete ? "match.scannedAll" : "match.scanned", {
      matches: fmtNum(found.jobs.length), scanned: fmtNum(found.scanned), total: fmtNum(found.total),
    }) : "";
    const last = start + jobs.data.length;
    $("page-info").textContent = found ? "" : jobs.data.length
      ? t("pager.range", { from: fmtNum(start + 1), to: fmtNum(last), total: fmtNum(Math.max(total, last)) })
      : t("pager.empty", { total: fmtNum(total) });
    $("page-prev").disabled = !!found || route.page === 0;
    $("page-next").disabled = !!found || start + PAGE_SIZE >= total;
    showBulk(route, picking);
    $("page-prev").onclick = () => { location.hash = href({ ...route, page: route.page - 1 }); };
    $("page-next").onclick = () => { location.hash = href({ ...route, page: route.page + 1 }); };
  }

  function ageText(ms) {
    const found = GRACES.find(([, v]) => v === ms);
    if (!found) return fmtDuration(ms);
    if (found[0] === "hour") return fmtUnit(1, "hour");
    if (found[0] === "day") return fmtUnit(1, "day");
    return fmtUnit(7, "day");
  }

  function jobActions(route, queue, j) {
    if (readOnly()) return [];
    const base = `${q(queue)}/jobs/${encodeURIComponent(j.id)}`;
    const vars = { id: j.id };
    const out = [];
    if (j.status === "failed") {
      out.push(h("button", { type: "button", data: { action: "retry" }, text: t("action.retry"),
        onclick: () => act(route, { ask: t("confirm.retryJob", vars), path: `${base}/retry`, done: t("done.retryJob", vars) }) }));
    }
    if (j.status === "delayed" && !isScheduleRun(j)) {  // a schedule's run: "run now" instead
      out.push(h("button", { type: "button", data: { action: "promote" }, text: t("action.promote"),
        onclick: () => act(route, { ask: t("confirm.promoteJob", vars), path: `${base}/promote`, done: t("done.promoteJob", vars) }) }));
    }
    if (j.status !== "active" && !isScheduleRun(j)) {
      out.push(h("button", { type: "button", class: "danger", data: { action: "remove" }, text: t("action.remove"),
        onclick: async () => {
          const removed = await act(route, { ask: t("confirm.removeJob", vars), path: base, method: "DELETE", done: t("done.removeJob", vars) });
          if (removed && parseRoute().view === "job") {
            location.hash = href({ view: "queue", queue, status: j.status });
          }
        } }));
    }
    return out;
  }

  function jobRow(route, cols, j) {
    const cells = cols.map((c) => {
      if (c.key === "id") {
        return h("td", { class: "title" }, pickBox(j), h("a", { href: href({ view: "job", queue: route.queue, job: j.id }), text: j.id }));
      }
      const td = c.cell(j);
      td.setAttribute("data-label", t(`col.${c.key}`));
      return td;
    });
    return h("tr", { data: { job: j.id } }, cells, h("td", { class: "row-actions" }, jobActions(route, route.queue, j)));
  }

  function pickBox(j) {
    if (readOnly()) return null;
    return h("input", {
      type: "checkbox", class: "pick", "aria-label": t("bulk.pickJob", { id: j.id }), checked: pick.ids.has(j.id), data: { pick: j.id },
      onchange: (ev) => {
        if (ev.target.checked) pick.ids.add(j.id);
        else pick.ids.delete(j.id);
        syncPicks();
      },
    });
  }

  // -- search and bulk actions ------------------------------------------------------------

  // Tick boxes and counts from `pick.ids` (redraws of the list keep what was ticked).
  function syncPicks() {
    for (const box of $("jobs-body").querySelectorAll("input[data-pick]")) box.checked = pick.ids.has(box.dataset.pick);
    const all = $("pick-all");
    if (all) all.checked = pick.shown.length > 0 && pick.shown.every((id) => pick.ids.has(id));
    $("bulk-count").textContent = t("bulk.selected", { count: fmtNum(pick.ids.size) });
    for (const id of ["bulk-retry", "bulk-promote", "bulk-remove", "bulk-none"]) $(id).disabled = pick.ids.size === 0;
    const matches = pick.found ? pick.found.jobs.length : 0;
    $("bulk-matches").classList.toggle("hidden", !matches);
    $("bulk-matches").textContent = t("bulk.pickMatches", { count: fmtNum(matches) });
  }

  function pickAll(ev) {
    for (const id of pick.shown) {
      if (ev.target.checked) pick.ids.add(id);
      else pick.ids.delete(id);
    }
    syncPicks();
  }

  function showBulk(route, picking) {
    $("bulk-bar").classList.toggle("hidden", !picking);
    for (const [action, spec] of Object.entries(BULK)) {
      const button = $(`bulk-${action}`);
      button.classList.toggle("hidden", !spec.states.includes(route.status));
      button.onclick = () => bulkAct(route, action);
    }
    $("bulk-matches").onclick = () => {
      for (const j of pick.found ? pick.found.jobs : []) pick.ids.add(j.id);
      syncPicks();
    };
    syncPicks();
  }

  async function bulkAct(route, action) {
    const ids = [...pick.ids];
    if (!ids.length) return;
    if (state.shown !== href(route) || href(parseRoute()) !== href(route)) {
      banner(t("error.stale"));
      return;
    }
    if (ids.length > BULK_MAX) {
      banner(t("bulk.tooMany", { count: fmtNum(ids.length), max: fmtNum(BULK_MAX) }));
      return;
    }
    const vars = { count: fmtNum(ids.length), queue: route.queue };
    if (!window.confirm(t(BULK[action].ask, vars))) return;
    try {
      const res = await api(`/api/queue-dashboard/queues/${encodeURIComponent(route.queue)}/jobs/bulk-action`, "POST", { action, ids });
      pick.ids.clear();
      const bad = res.results.filter((r) => !r.ok);
      const done = t(BULK[action].done, { ...vars, ok: fmtNum(res.succeeded) });
      if (bad.length) banner(`${done} ${t("bulk.someFailed", { failed: fmtNum(bad.length), first: `${bad[0].id}: ${bad[0].error}` })}`);
      else banner(done, "ok");
    } catch (e) {
      banner(explain(e));
    }
    await refresh();
  }

  function searchJobs(ev) {
    ev.preventDefault();
    if (parseRoute().view !== "queue") return;
    pick.query = $("match-q").value.trim();
    pick.ids.clear();
    refresh();
  }

  function clearSearch() {
    $("match-q").value = "";
    pick.query = "";
    pick.ids.clear();
    refresh();
  }

  // -- one job ----------------------------------------------------------------------------

  // Without better knowledge, a frame from a dependency (site-packages, node_modules, the
  // standard library) or from the machinery every job runs through (kk/workers, kk/compat,
  // kk/queues) is library.
  const LIB_FRAME = /site-packages|dist-packages|node_modules|[\\/]lib[\\/]python\d|node:internal|<frozen |(^|[\\/"])kk[\\/](queues|workers|compat)[\\/]/;
  const FRAME = /^\s*(File "|at )/;
  const lastTwo = (path) => path.split(/[\\/]/).slice(-2).join("/");

  // "ours" when the frame is in the queue's processor package (the operator's code), as the
  // server reports it; paths in traces are relative to the code root or cut to ".../a/b.py".
  function frameKind(line, code) {
    const m = line.match(/File "([^"]+)"/) || line.match(/\(([^()]+?)(:\d+)*\)\s*$/) || line.match(/at (\S+?)(:\d+)*\s*$/);
    const path = m ? m[1] : line;
    if (code && code.codePaths.length) {
      const ours = code.codePaths.some((p) => path.includes(p) || (p.endsWith(".py") && lastTwo(path) === lastTwo(p)));
      return ours ? "ours" : "lib";
    }
    return LIB_FRAME.test(line) ? "lib" : "ours";
  }

  function traceBlock(text, code) {
    const full = String(text ?? "");
    if (full.length > TRACE_CHARS) return longText(`trace:${full.length}`, full);
    const pre = h("pre", { class: "code trace" });
    let kind = null; // the frame the indented lines below belong to
    for (const line of full.split("\n")) {
      if (FRAME.test(line)) {
        kind = frameKind(line, code);
        pre.append(h("span", { class: `frame ${kind}`, data: { frame: kind } }, line), "\n");
      } else if (kind && /^\s{4,}/.test(line)) {
        // The source line (and its ^^^ marks) under a Python frame belong to it.
        pre.append(h("span", { class: `frame ${kind}` }, line), "\n");
      } else {
        kind = null;
        pre.append(h("span", { class: "msg" }, line), "\n");
      }
    }
    return pre;
  }

  // BullMQ appends one trace per failed attempt (the oldest dropped past stackTraceLimit):
  // the last one belongs to the last attempt. When each ended comes from the event stream
  // (recent jobs); the last failure's time is also the job's own finishedOn.
  function traces(j, code, times) {
    const list = j.stacktrace || [];
    const newest = j.attempts || list.length;
    const ended = new Map((times || []).filter((a) => a.endedAt).map((a) => [a.attempt, a.endedAt]));
    const lastFailed = j.status === "failed" ? j.finishedOn : null;
    return list.map((text, i) => {
      const n = newest - (list.length - 1 - i);
      return { n, text, time: ended.get(n) || (i === list.length - 1 ? lastFailed : null) };
    })
      .reverse()
      .map(({ n, text, time }) => h("section", { class: "attempt", data: { attempt: n } },
        h("h4", { text: time ? t("job.attemptAt", { n, time: fmtTime(time) }) : t("job.attempt", { n }) }),
        traceBlock(text, code)));
  }

  // Attempt times of a job: read again only when its attempts or state change.
  const attemptCache = new Map();

  async function attemptTimes(route, j) {
    if (!j.stacktrace || !j.stacktrace.length) return null;
    const key = JSON.stringify([route.queue, j.id, j.attempts, j.status]);
    if (!attemptCache.has(key)) {
      const path = `/api/queue-dashboard/queues/${encodeURIComponent(route.queue)}/jobs/${encodeURIComponent(j.id)}/attempts`;
      const answer = await api(path).catch(() => null);
      if (!answer) return null;
      if (attemptCache.size > 50) attemptCache.clear();
      attemptCache.set(key, answer.data.attempts);
    }
    return attemptCache.get(key);
  }

  // Asked once per queue: it changes only with the configuration.
  const codeCache = new Map();

  async function processorCode(queue) {
    if (!codeCache.has(queue)) {
      const answer = await api(`/api/queue-dashboard/queues/${encodeURIComponent(queue)}/processor`).catch(() => null);
      if (!answer) return null; // asked again next time
      codeCache.set(queue, answer.data);
    }
    return codeCache.get(queue);
  }

  async function loadJob(route) {
    const base = `${q(route.queue)}/jobs/${encodeURIComponent(route.job)}`;
    const [job, logs, code] = await Promise.all([
      api(base),
      api(`${base}/logs?start=0&end=199`).catch(() => null),
      processorCode(route.queue),
    ]);
    const j = job.data;
    const times = await attemptTimes(route, j);
    stillOn(route);
    const link = $("job-queue-link");
    link.textContent = route.queue;
    link.setAttribute("href", href({ view: "queue", queue: route.queue, status: j.status }));
    $("job-title").textContent = j.id;
    const logData = logs ? logs.data : { logs: [], count: 0 };
    render($("job-detail"), [j, logData, code, times, [...state.expanded]], () => {
      const field = (key, value) => [h("dt", { text: t(key) }), h("dd", { data: { fact: key }, text: value })];
      const parts = [
        h("div", { class: "job-head" },
          h("h2", {}, h("span", { text: j.name }), " ", h("span", { class: `badge ${j.status}`, text: t(`state.${j.status}`) })),
          h("div", { class: "actions" }, readOnly() ? null : h("button", {
            type: "button", data: { action: "duplicate" }, text: t("action.duplicate"),
            onclick: () => { location.hash = href({ view: "add", queue: route.queue, job: j.id }); },
          }), jobActions(route, route.queue, j))),
        h("dl", { class: "facts" },
          field("job.id", j.id), field("job.attempts", attemptsText(j)), field("job.progress", pretty(j.progress)),
          field("job.priority", fmtNum(j.priority)), field("job.delay", fmtDuration(j.delay)),
          j.status === "delayed" ? field("job.runsAt", `${fmtTime(runsAt(j))} (${fmtRelative(runsAt(j))})`) : null,
          field("job.created", fmtTime(j.createdAt)), field("job.processed", fmtTime(j.processedOn)),
          field("job.finished", fmtTime(j.finishedOn)),
          field("job.took", fmtDuration(between(j.processedOn, j.finishedOn)))),
      ];
      if (isScheduleRun(j)) parts.push(h("p", { class: "muted", text: t("job.scheduleRun") }));
      if (j.failedReason) parts.push(h("h3", { text: t("job.failedReason") }), longText("failedReason", j.failedReason));
      // What the job was given and what it said first; the traces, long, after them.
      parts.push(h("h3", { text: t("job.data") }), longText("data", pretty(j.data)));
      if (j.returnValue !== null && j.returnValue !== undefined) {
        parts.push(h("h3", { text: t("job.returnValue") }), longText("returnValue", pretty(j.returnValue)));
      }
      parts.push(h("h3", { text: t("job.logs", { count: fmtNum(logData.count) }) }),
        logData.count ? longText("logs", logData.logs.join("\n")) : h("p", { class: "muted", text: t("job.noLogs") }));
      if (j.stacktrace && j.stacktrace.length) {
        parts.push(h("h3", { text: t("job.traces") }), h("p", { class: "muted", text: t("job.tracesHint") }),
          h("div", { class: "traces" }, traces(j, code, times)));
      }
      parts.push(h("h3", { text: t("job.options") }), longText("opts", pretty(j.opts)));
      return parts;
    });
  }

  // -- add and duplicate a job ----------------------------------------------------------------

  // Asked once per queue: the data model changes only with the configuration.
  const formCache = new Map();

  async function jobForm(queue) {
    if (!formCache.has(queue)) {
      formCache.set(queue, (await api(`/api/queue-dashboard/queues/${encodeURIComponent(queue)}/form`)).data);
    }
    return formCache.get(queue);
  }

  function forgetForm() {
    Object.assign(adder, { key: null, route: null, form: null, fields: [] });
    $("add-name").value = "";
    $("add-options").value = "";
  }

  // A property's schema with `$ref`, a lone `allOf` and `X | None` unwrapped; what it says
  // itself (title, description, default) wins over what it points to.
  function resolveSchema(root, node) {
    let nullable = false;
    for (let depth = 0; depth < 8 && node && typeof node === "object"; depth += 1) {
      const { $ref, allOf, anyOf, oneOf, ...own } = node;
      if (typeof $ref === "string") {
        const target = ((root && root.$defs) || {})[$ref.replace(/^#\/\$defs\//, "")];
        if (!target) break;
        node = { ...target, ...own };
        continue;
      }
      if (Array.isArray(allOf) && allOf.length === 1) {
        node = { ...allOf[0], ...own };
        continue;
      }
      const alts = anyOf || oneOf;
      if (Array.isArray(alts)) {
        const real = alts.filter((a) => !(a && a.type === "null"));
        if (real.length < alts.length) nullable = true;
        if (real.length === 1) {
          node = { ...real[0], ...own };
          continue;
        }
      }
      if (Array.isArray(node.type)) {
        const types = node.type.filter((x) => x !== "null");
        if (types.length < node.type.length) nullable = true;
        if (types.length === 1) node = { ...node, type: types[0] };
      }
      break;
    }
    return { node: node || {}, nullable };
  }

  // Which input a property gets: one per top-level property, JSON for anything nested.
  function fieldKind(node) {
    if ("const" in node) return "const";
    const primitive = (v) => v === null || ["string", "number", "boolean"].includes(typeof v);
    if (Array.isArray(node.enum) && node.enum.length && node.enum.every(primitive)) return "enum";
    if (["string", "integer", "number", "boolean"].includes(node.type)) return node.type;
    return "json";
  }

  function buildField(root, name, propSchema, required, index) {
    const { node, nullable } = resolveSchema(root, propSchema);
    const kind = fieldKind(node);
    const field = { name, kind, node, required, nullable, input: null };
    if (kind === "const") return field; // the model's own value: nothing to choose
    const id = `add-field-${index}`;
    const attrs = { id, data: { prop: name } };
    const shown = node.default === undefined || node.default === null ? undefined : pretty(node.default);
    let input;
    if (kind === "boolean") {
      input = h("input", { ...attrs, type: "checkbox", checked: node.default === true });
    } else if (kind === "enum") {
      const blank = node.default !== undefined ? t("form.default", { value: pretty(node.default) }) : "—";
      input = h("select", attrs,
        !required || nullable || node.default !== undefined ? h("option", { value: "", text: blank }) : h("option", { value: "", text: t("form.choose") }),
        node.enum.map((v) => h("option", { value: JSON.stringify(v), text: v === null ? "null" : String(v) })));
    } else if (kind === "integer" || kind === "number") {
      input = h("input", {
        ...attrs, type: "number", step: kind === "integer" ? "1" : "any", inputmode: kind === "integer" ? "numeric" : "decimal",
        min: node.minimum, max: node.maximum, placeholder: shown,
      });
    } else if (kind === "string") {
      const type = node.format === "email" ? "email" : ["uri", "url"].includes(node.format) ? "url" : "text";
      input = h("input", { ...attrs, type, maxlength: node.maxLength, placeholder: shown, spellcheck: "false" });
    } else {
      input = h("textarea", { ...attrs, rows: 3, class: "json", spellcheck: "false", placeholder: shown || (node.type === "array" ? "[ ]" : "{ }") });
    }
    field.input = input;
    const label = h("label", { for: id },
      h("code", { text: name }),
      required ? h("abbr", { class: "req", title: t("form.required"), text: " *" }) : null,
      kind === "json" ? h("span", { class: "muted", text: ` ${t("form.json")}` }) : null);
    const hint = node.description ? h("p", { class: "hint", text: node.description }) : null;
    field.el = h("div", { class: `field ${kind === "boolean" ? "check" : ""}`, data: { field: name } },
      kind === "boolean" ? [input, label] : [label, input], hint,
      h("p", { class: "field-error", role: "alert", data: { errorFor: "data." + name } }));
    return field;
  }

  // The form a queue's data model describes; a JSON textarea for a queue without one.
  function buildForm(route, form) {
    const schema = form.dataSchema;
    const props = schema && schema.properties && typeof schema.properties === "object" ? schema.properties : null;
    const required = new Set(schema && Array.isArray(schema.required) ? schema.required : []);
    adder.fields = props ? Object.entries(props).map(([name, sub], i) => buildField(schema, name, sub, required.has(name), i)) : [];
    const parts = adder.fields.filter((f) => f.el).map((f) => f.el);
    if (!props) {
      parts.push(h("div", { class: "field", data: { field: "data" } },
        h("label", { for: "add-data", text: t("form.data") }),
        h("textarea", { id: "add-data", rows: 8, class: "json", spellcheck: "false", placeholder: "{ }" }),
        h("p", { class: "hint", text: t("form.dataHint") }),
        h("p", { class: "field-error", role: "alert", data: { errorFor: "data" } })));
    }
    $("add-fields").replaceChildren(...parts);
    $("add-hint").textContent = t(props ? "form.schemaHint" : "form.noSchemaHint", { queue: route.queue });
    const named = form.body === "job"; // the email route takes its own name (`type`)
    $("add-name-field").classList.toggle("hidden", !named);
    $("add-name").setAttribute("placeholder", form.defaultJobName);
    $("add-example").classList.toggle("hidden", !form.example);
    $("add-example").onclick = () => {
      clearFormErrors();
      fillData(form.example);
    };
  }

  function fillData(data) {
    const values = data && typeof data === "object" && !Array.isArray(data) ? data : {};
    if (!adder.fields.length && $("add-data")) {
      $("add-data").value = Object.keys(values).length ? pretty(values) : "";
      return;
    }
    for (const f of adder.fields) {
      if (!f.input) continue;
      const v = values[f.name];
      if (f.kind === "boolean") f.input.checked = v === undefined ? f.node.default === true : Boolean(v);
      else if (v === undefined || v === null) f.input.value = "";
      else if (f.kind === "enum") f.input.value = f.node.enum.some((x) => x === v) ? JSON.stringify(v) : "";
      else if (f.kind === "json") f.input.value = pretty(v);
      else f.input.value = typeof v === "string" ? v : JSON.stringify(v);
    }
  }

  // What the form holds, as the add route takes it, and what could not be read.
  function collectForm() {
    const errors = [];
    let data = {};
    const json = (text, key, wantObject) => {
      try {
        const value = JSON.parse(text);
        if (wantObject && (value === null || typeof value !== "object" || Array.isArray(value))) {
          errors.push({ key, message: t("form.notObject") });
          return undefined;
        }
        return value;
      } catch (e) {
        errors.push({ key, message: t("form.badJson") });
        return undefined;
      }
    };
    if (!adder.fields.length && $("add-data")) {
      const text = $("add-data").value.trim();
      data = text ? json(text, "data", true) || {} : {};
    }
    for (const f of adder.fields) {
      if (!f.input) continue;
      const key = "data." + f.name;
      if (f.kind === "boolean") {
        data[f.name] = f.input.checked;
        continue;
      }
      if (f.kind === "integer" || f.kind === "number") {
        if (f.input.validity.badInput) {
          errors.push({ key, message: t("form.notNumber") });
          continue;
        }
        const text = f.input.value.trim();
        if (text) data[f.name] = Number(text);
        continue;
      }
      const text = f.kind === "json" ? f.input.value.trim() : f.input.value;
      if (!text) continue; // left empty: the model's default (or its "required" error)
      if (f.kind === "enum") data[f.name] = JSON.parse(text);
      else if (f.kind === "json") {
        const value = json(text, key, false);
        if (value !== undefined) data[f.name] = value;
      } else data[f.name] = text;
    }
    const body = adder.form.body === "fields" ? { ...data } : { data };
    const name = $("add-name").value.trim();
    if (name && adder.form.body === "job") body.name = name;
    const optionsText = $("add-options").value.trim();
    if (optionsText) {
      const options = json(optionsText, "options", true);
      if (options) body.options = options;
    }
    return { body, errors };
  }

  // Where an error of the add route belongs: `data.to` (or `to` for the email route's
  // body), `name`, `options.delay`; anything else above the form.
  function errorKey(field) {
    const path = String(field || "");
    const head = (p) => p.split(/[.[]/)[0];
    if (head(path) === "options") return "options";
    if (adder.form.body === "job" && head(path) === "name") return "name";
    const inData = adder.form.body === "fields" ? path : path.startsWith("data.") ? path.slice(5) : "";
    const prop = head(inData);
    if (prop && adder.fields.some((f) => f.name === prop && f.input)) return "data." + prop;
    return adder.fields.length ? null : "data";
  }

  function clearFormErrors() {
    $("add-errors").replaceChildren();
    $("add-result").replaceChildren();
    for (const el of $("add-form").querySelectorAll("[data-error-for]")) el.textContent = "";
    for (const el of $("add-form").querySelectorAll(".invalid")) el.classList.remove("invalid");
  }

  // Each message next to its field (the part of the path below the field first).
  function showFormErrors(errors) {
    const general = [];
    for (const { key, field, message } of errors) {
      const spot = key ? $("add-form").querySelector(`[data-error-for="${CSS.escape(key)}"]`) : null;
      if (!spot) {
        general.push(field ? `${field}: ${message}` : message);
        continue;
      }
      const bare = key.startsWith("data.") ? key.slice(5) : key;
      const below = field && field !== key && field !== bare ? `${field}: ` : "";
      spot.textContent = spot.textContent ? `${spot.textContent} ${below}${message}` : `${below}${message}`;
      const box = spot.closest(".field");
      if (box) box.classList.add("invalid");
    }
    $("add-errors").replaceChildren(...general.map((m) => h("p", { text: m })));
    const first = $("add-form").querySelector(".invalid input, .invalid textarea, .invalid select");
    if (first) first.focus();
  }

  // Only what a client may set again (the add route's allow-list), never the job's id.
  function safeOptions(opts) {
    const out = {};
    if (!opts || typeof opts !== "object") return out;
    const int = (v) => Number.isInteger(v);
    if (int(opts.attempts) && opts.attempts >= 1 && opts.attempts <= 100) out.attempts = opts.attempts;
    const b = opts.backoff;
    if (b && typeof b === "object" && ["fixed", "exponential"].includes(b.type) && int(b.delay) && b.delay >= 0) {
      out.backoff = { type: b.type, delay: b.delay };
    }
    if (int(opts.priority) && opts.priority > 0) out.priority = opts.priority;
    if (int(opts.delay) && opts.delay > 0) out.delay = opts.delay;
    return out;
  }

  async function loadAdd(route) {
    const link = $("add-queue-link");
    link.textContent = route.queue;
    link.setAttribute("href", href({ view: "queue", queue: route.queue }));
    $("add-title").textContent = route.job ? t("form.duplicateTitle", { id: route.job }) : t("form.addTitle");
    const key = JSON.stringify([href(route), i18n.lang, auth.role]);
    if (adder.key === key) return; // built: what is typed stays as it is
    if (readOnly()) {
      forgetForm();
      adder.key = key;
      $("add-form").classList.add("hidden");
      $("add-denied").classList.remove("hidden");
      return;
    }
    const [form, source] = await Promise.all([
      jobForm(route.queue),
      route.job && adder.route !== href(route) ? api(`${q(route.queue)}/jobs/${encodeURIComponent(route.job)}`) : null,
    ]);
    stillOn(route);
    $("add-form").classList.remove("hidden");
    $("add-denied").classList.add("hidden");
    // Drawn again in another language: what was typed is kept.
    const draft = adder.route === href(route) && adder.form ? collectForm().body : null;
    adder.key = key;
    adder.route = href(route);
    adder.form = form;
    buildForm(route, form);
    clearFormErrors();
    if (draft) {
      fillData(form.body === "fields" ? draft : draft.data);
      return;
    }
    if (source) {
      const j = source.data;
      fillData(j.data);
      $("add-name").value = form.body === "job" ? j.name || "" : "";
      const options = safeOptions(j.opts);
      $("add-options").value = Object.keys(options).length ? pretty(options) : "";
    } else {
      fillData(null);
    }
  }

  const stateName = (st) => (st && i18n.en[`state.${st}`] ? t(`state.${st}`) : String(st || ""));

  async function submitAdd(ev) {
    ev.preventDefault();
    const route = parseRoute();
    if (route.view !== "add" || !adder.form || adder.route !== href(route) || state.shown !== href(route)) {
      banner(t("error.stale"));
      return;
    }
    if (readOnly()) {
      banner(t("error.readOnly"));
      return;
    }
    clearFormErrors();
    const { body, errors } = collectForm();
    if (errors.length) {
      showFormErrors(errors);
      return;
    }
    const submit = $("add-submit");
    submit.disabled = true;
    try {
      const res = await api(`${q(route.queue)}/jobs`, "POST", body);
      if (href(parseRoute()) !== href(route)) return;
      const job = h("a", { href: href({ view: "job", queue: route.queue, job: res.jobId }), data: { job: res.jobId }, text: res.jobId });
      $("add-result").replaceChildren(h("p", { class: res.duplicate ? "warn" : "ok" },
        t(res.duplicate ? "form.exists" : "form.added", { state: stateName(res.state) }), " ", job));
    } catch (e) {
      if (e.details && e.details.length) {
        showFormErrors(e.details.map((d) => ({ key: errorKey(d.field), field: d.field, message: d.message })));
      } else {
        showFormErrors([{ key: null, message: explain(e) }]);
      }
    } finally {
      submit.disabled = false;
    }
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
    const key = href(route);
    if (!state.route || href(state.route) !== key) {
      if (!state.route || state.route.job !== route.job) state.expanded.clear();
      state.route = route;
      clearViews();
    }
    try {
      if (route.view === "queue") await loadQueue(route);
      else if (route.view === "job") await loadJob(route);
      else if (route.view === "add") await loadAdd(route);
      else await loadOverview(route);
      state.shown = key;
      show(route.view);
      state.updatedAt = new Date();
      live("live.updated", true);
      // Clear only an error this loop showed; an action's error stays until the next action.
      if (state.loadError) {
        state.loadError = false;
        banner("");
      }
    } catch (e) {
      if (!(e instanceof Stale)) failed(route, e);
    } finally {
      state.busy = false;
      syncStream(route);
      if (state.again) {
        state.again = false;
        setTimeout(refresh, 0);
      }
    }
  }

  function failed(route, e) {
    live("live.notUpdated", false);
    if (e.status === 401) {
      signedOut(); // the session expired or its key was removed
      return;
    }
    const clientError = e.status >= 400 && e.status < 500;
    if (clientError || state.shown !== href(route)) {
      // Nothing of this view can be trusted (or it never loaded): show the error alone.
      showError(route, e);
    } else {
      // A passing server or network failure: the last good data stays, marked not updated.
      state.loadError = true;
      banner(explain(e, route));
    }
  }

  // The interval poll; while the event stream drives the updates, only a slow tick.
  function schedule() {
    clearTimeout(state.timer);
    if (prefs.paused) return;
    const seconds = stream.live ? Math.max(prefs.interval, STREAM_IDLE_S) : prefs.interval;
    state.timer = setTimeout(async () => {
      if (!document.hidden && !prefs.paused) await refresh();
      schedule();
    }, seconds * 1000);
  }

  // -- live lists: the queue's event stream ------------------------------------------------

  // A queue view on screen, updates on and the page visible: follow that queue's events.
  function syncStream(route) {
    const on = route.view === "queue" && state.shown === href(route) && href(parseRoute()) === href(route)
      && auth.signedIn && !prefs.paused && !document.hidden;
    if (on) openStream(route.queue);
    else closeStream();
  }

  function openStream(queue) {
    if (stream.es && stream.queue === queue) return;
    closeStream();
    if (typeof EventSource !== "function") return; // polling it is
    // Refused (too many streams, signed out...): polled, and asked again later.
    if (stream.refused === queue && Date.now() - stream.refusedAt < STREAM_RETRY_MS) return;
    // Same origin: the session cookie goes along, as with every read.
    const es = new EventSource(`${q(queue)}/events`);
    Object.assign(stream, { es, queue });
    es.addEventListener("open", () => {
      if (stream.es !== es) return;
      stream.live = true;
      stream.refused = null;
      showLive();
      schedule();
    });
    es.addEventListener("error", () => {
      if (stream.es !== es) return;
      // The browser reconnects on its own (resuming after the last event id) unless the
      // server refused the stream; meanwhile the interval poll is back.
      const was = stream.live;
      stream.live = false;
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        Object.assign(stream, { es: null, queue: null, refused: queue, refusedAt: Date.now() });
      }
      showLive();
      schedule();
      if (was) streamed(); // catch up on what happened while it was down
    });
    for (const name of STREAM_EVENTS) {
      es.addEventListener(name, () => {
        if (stream.es === es) streamed();
      });
    }
  }

  function closeStream() {
    clearTimeout(stream.pending);
    stream.pending = null;
    if (stream.es) stream.es.close();
    const was = stream.live;
    Object.assign(stream, { es: null, queue: null, live: false });
    if (was) {
      showLive();
      schedule();
    }
  }

  // An event: refresh what is on screen, at most once per LIVE_MS.
  function streamed() {
    if (stream.pending) return;
    const wait = Math.max(0, stream.last + LIVE_MS - Date.now());
    stream.pending = setTimeout(() => {
      stream.pending = null;
      stream.last = Date.now();
      if (!prefs.paused && !document.hidden) refresh();
    }, wait);
  }

  function loadPrefs() {
    const saved = Number(localStorage.getItem(STORE.interval));
    prefs.interval = INTERVALS.includes(saved) ? saved : DEFAULT_INTERVAL;
    prefs.paused = localStorage.getItem(STORE.paused) === "1";
  }

  function setRefresh(changes) {
    Object.assign(prefs, changes);
    localStorage.setItem(STORE.interval, String(prefs.interval));
    localStorage.setItem(STORE.paused, prefs.paused ? "1" : "0");
    fillSelects();
    if (prefs.paused) closeStream();
    showLive();
    if (!prefs.paused && changes.paused === false) refresh(); // opens the stream again
    schedule();
  }

  async function findJob(ev) {
    ev.preventDefault();
    const id = $("search-id").value.trim();
    const route = parseRoute();
    if (!id || route.view !== "queue") return;
    try {
      await api(`${q(route.queue)}/jobs/${encodeURIComponent(id)}`);
      location.hash = href({ view: "job", queue: route.queue, job: id });
    } catch (e) {
      banner(e.code === "JOB_NOT_FOUND" ? t("search.notFound", { id, queue: route.queue }) : explain(e));
    }
  }

  async function init() {
    localStorage.removeItem(OLD_KEY_STORE);
    loadPrefs();
    await setLang(pickLang());
    $("login-form").addEventListener("submit", signIn);
    $("logout").addEventListener("click", signOut);
    $("search-form").addEventListener("submit", findJob);
    $("match-form").addEventListener("submit", searchJobs);
    $("match-clear").addEventListener("click", clearSearch);
    $("bulk-none").addEventListener("click", () => {
      pick.ids.clear();
      syncPicks();
    });
    $("lang").addEventListener("change", async () => {
      localStorage.setItem(STORE.lang, $("lang").value);
      await setLang($("lang").value);
      if (state.shown) refresh();
    });
    $("refresh-interval").addEventListener("change", () => setRefresh({ interval: Number($("refresh-interval").value) }));
    $("refresh-toggle").addEventListener("click", () => setRefresh({ paused: !prefs.paused }));
    window.addEventListener("hashchange", () => {
      banner("");
      refresh();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) closeStream(); // a hidden page holds no connection open
      else if (!prefs.paused) refresh();
    });
    window.addEventListener("pagehide", closeStream);
    $("add-form").addEventListener("submit", submitAdd);
    await refresh();
    schedule();
  }

  init();
})();
