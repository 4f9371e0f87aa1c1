// The ferry serve dashboard: logs in, lists the jobs with live per-table progress (and a
// cutover job's checklist), starts and cancels jobs. Plain DOM code over the admin API; every value from the server goes through
// textContent, never innerHTML.
"use strict";

(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "ferry.token";
  const USER_KEY = "ferry.user";
  const ACTIVE = new Set(["pending", "validating", "running", "dry_run"]);
  const FINISHED = new Set(["completed", "failed", "cancelled"]);
  // Poll fast only while something moves; slowly otherwise, to see jobs other admins start.
  const FAST_MS = 1000;
  const SLOW_MS = 5000;
  const PAGE = 20;
  const MAX_PAGE = 100;

  const $ = (id) => document.getElementById(id);
  const numbers = new Intl.NumberFormat();

  const state = {
    count: PAGE,
    timer: null,
    polling: false,
    elements: new Map(), // job id → its <article>
    rates: new Map(), // job id + table → {rows, at, rate}
  };

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // One request to the API; resolves to the envelope's `data`, rejects with the envelope's
  // `error` string so the page can show exactly what the server said.
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError(0, `The server does not answer (${e.message}).`);
    }
    const text = response.status === 204 ? "" : await response.text();
    let payload = null;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = null;
    }
    if (!response.ok || (payload && payload.success === false)) {
      throw new ApiError(response.status, errorText(payload) || `${response.status} ${response.statusText}`);
    }
    return payload;
  }

  function errorText(payload) {
    if (!payload) return "";
    const e = payload.error ?? payload.message;
    if (typeof e === "string") return e;
    if (e && typeof e.message === "string") return e.message;
    return "";
  }

  // --- session -------------------------------------------------------------------------

  function loggedIn() {
    return Boolean(sessionStorage.getItem(TOKEN_KEY));
  }

  function showSession() {
    const on = loggedIn();
    $("login").hidden = on;
    $("app").hidden = !on;
    $("session").hidden = !on;
    $("session-user").textContent = on ? sessionStorage.getItem(USER_KEY) || "" : "";
    if (on) {
      refreshNow();
    } else {
      stopPolling();
      $("login-username").focus();
    }
  }

  function logout(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    for (const el of state.elements.values()) el.remove();
    state.elements.clear();
    state.rates.clear();
    clearError();
    showSession();
    if (message) showFormError("login-error", message);
  }

  async function onLogin(event) {
    event.preventDefault();
    const button = $("login-submit");
    const username = $("login-username").value.trim();
    const password = $("login-password").value;
    showFormError("login-error", "");
    button.disabled = true;
    try {
      const payload = await api("POST", "/auth/login", { username, password });
      const token = payload && payload.data && payload.data.access_token;
      if (!token) throw new ApiError(500, "The server answered the login without a token.");
      sessionStorage.setItem(TOKEN_KEY, token);
      sessionStorage.setItem(USER_KEY, username);
      $("login-password").value = "";
      showSession();
    } catch (e) {
      showFormError("login-error", e.message);
    } finally {
      button.disabled = false;
    }
  }

  // --- errors --------------------------------------------------------------------------

  function showFormError(id, message) {
    const el = $(id);
    el.textContent = message;
    el.hidden = !message;
  }

  function showError(message, source) {
    const el = $("error-banner");
    el.textContent = message;
    el.dataset.source = source;
    el.hidden = false;
  }

  function clearError(source) {
    const el = $("error-banner");
    if (source && el.dataset.source !== source) return;
    el.hidden = true;
    el.textContent = "";
  }

  // An admin call refused for the session (expired or revoked token) sends back to the login.
  function handleApiError(e, source) {
    if (e.status === 401) {
      logout("Your session has ended; log in again.");
      return;
    }
    showError(e.message, source);
  }

  // --- polling -------------------------------------------------------------------------

  function stopPolling() {
    clearTimeout(state.timer);
    state.timer = null;
  }

  function refreshNow() {
    stopPolling();
    poll();
  }

  async function poll() {
    if (!loggedIn() || state.polling) return;
    state.polling = true;
    let delay = SLOW_MS;
    try {
      const payload = await api("GET", `/admin/migrations?count=${state.count}&start=0`);
      const { jobs, total } = page(payload);
      clearError("poll");
      render(jobs, total);
      if (jobs.some((job) => ACTIVE.has(job.status))) delay = FAST_MS;
    } catch (e) {
      handleApiError(e, "poll");
    } finally {
      state.polling = false;
      if (loggedIn()) {
        stopPolling();
        state.timer = setTimeout(poll, delay);
      }
    }
  }

  // The page of jobs, whichever way the envelope nests the list and its total.
  function page(payload) {
    const data = payload ? payload.data : null;
    let jobs = [];
    let total = null;
    if (Array.isArray(data)) {
      jobs = data;
      total = payload.total ?? payload.total_count ?? null;
    } else if (data && typeof data === "object") {
      jobs = data.data || data.jobs || data.migrations || data.items || [];
      total = data.total ?? data.total_count ?? null;
    }
    jobs = jobs.slice().sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    return { jobs, total: total ?? jobs.length };
  }

  // --- rendering -----------------------------------------------------------------------

  function render(jobs, total) {
    const container = $("jobs");
    const seen = new Set();
    let previous = null;
    for (const job of jobs) {
      seen.add(job.id);
      let el = state.elements.get(job.id);
      if (!el) {
        el = $("job-template").content.firstElementChild.cloneNode(true);
        el.dataset.jobId = job.id;
        el.querySelector("[data-testid=job-cancel]").addEventListener("click", onCancel);
        state.elements.set(job.id, el);
      }
      updateJob(el, job);
      // Keep the DOM order equal to the list order without re-creating elements (the
      // browser test and the user may be holding on to them).
      const wanted = previous ? previous.nextElementSibling : container.firstElementChild;
      if (wanted !== el) container.insertBefore(el, wanted);
      previous = el;
    }
    for (const [id, el] of state.elements) {
      if (!seen.has(id)) {
        el.remove();
        state.elements.delete(id);
      }
    }
    $("jobs-empty").hidden = jobs.length > 0;
    $("jobs-count").textContent = jobs.length ? `${jobs.length} of ${numbers.format(total)}` : "";
    $("jobs-more").hidden = !(total > jobs.length && state.count < MAX_PAGE);
  }

  function updateJob(el, job) {
    const status = String(job.status || "unknown");
    const active = ACTIVE.has(status);
    const finished = FINISHED.has(status);
    const stats = job.stats && typeof job.stats === "object" ? job.stats : {};
    const totals = sumStats(stats);

    el.dataset.status = status;
    el.dataset.dryRun = job.dry_run ? "true" : "false";

    const badge = el.querySelector("[data-testid=job-status]");
    badge.textContent = status.replace("_", " ");
    badge.dataset.status = status;
    badge.dataset.failures = totals.failed > 0 ? "1" : "0";

    el.querySelector("[data-testid=job-kind]").textContent =
      `${job.kind || "job"}${job.dry_run ? " · dry run" : ""}`;
    el.querySelector("[data-testid=job-source-host]").textContent = job.source_host ? `from ${job.source_host}` : "";
    el.querySelector("[data-testid=job-time]").textContent = timeLine(job);
    const id = el.querySelector("[data-testid=job-id]");
    id.textContent = String(job.id).slice(0, 8);
    id.title = String(job.id);

    const cancel = el.querySelector("[data-testid=job-cancel]");
    if (!active) resetCancel(cancel);
    cancel.hidden = !active;

    const message = el.querySelector("[data-testid=job-error-message]");
    message.textContent = job.error_message || "";
    message.hidden = !job.error_message;

    updateTables(el, job, stats, active);
    updateSummary(el, job, totals, finished && !job.cutover);
    updateErrors(el, stats);
    updateChecklist(el, job);
  }

  // A cutover job: the verdict and one line per check (✓ pass, ✗ fail, – skipped) with its
  // kind, severity and evidence.
  function updateChecklist(el, job) {
    const box = el.querySelector("[data-testid=job-checklist]");
    const summary = job.cutover && typeof job.cutover === "object" ? job.cutover : null;
    box.hidden = !summary;
    if (!summary) return;
    const checks = Array.isArray(summary.checks) ? summary.checks : [];
    const verdict = box.querySelector("[data-testid=cutover-verdict]");
    const failed = checks.filter((c) => c.status === "fail").length;
    const skipped = checks.filter((c) => c.status === "skipped").length;
    verdict.dataset.verdict = String(summary.verdict);
    let line = `${summary.verdict}: ${checks.length} checks, ${failed} failed, ${skipped} skipped`;
    if (typeof summary.window_s === "number") line += ` · cutover window ${summary.window_s.toFixed(1)} s`;
    verdict.textContent = line;
    const marks = { pass: "✓", fail: "✗", skipped: "–" };
    box.querySelector("[data-testid=cutover-checks]").replaceChildren(
      ...checks.map((c) => {
        const li = document.createElement("li");
        li.setAttribute("data-testid", "cutover-check");
        li.dataset.status = String(c.status);
        li.dataset.check = String(c.name);
        const mark = document.createElement("span");
        mark.className = "mark";
        mark.textContent = marks[c.status] || "?";
        const name = document.createElement("b");
        name.textContent = String(c.name);
        const kind = document.createElement("span");
        kind.className = "muted";
        kind.textContent = ` (${c.kind}, ${c.severity}) `;
        const evidence = document.createElement("span");
        evidence.setAttribute("data-testid", "cutover-evidence");
        evidence.textContent = String(c.evidence ?? "");
        li.append(mark, " ", name, kind, evidence);
        return li;
      }),
    );
  }

  function sumStats(stats) {
    const sum = { tables: 0, total: 0, migrated: 0, skipped: 0, failed: 0, errors: 0 };
    for (const s of Object.values(stats)) {
      sum.tables += 1;
      sum.total += Number(s.total) || 0;
      sum.migrated += Number(s.migrated) || 0;
      sum.skipped += Number(s.skipped) || 0;
      sum.failed += Number(s.failed) || 0;
      sum.errors += Array.isArray(s.errors) ? s.errors.length : 0;
    }
    return sum;
  }

  function updateTables(el, job, stats, active) {
    const box = el.querySelector("[data-testid=job-tables-progress]");
    const rows = new Map([...box.children].map((row) => [row.dataset.table, row]));
    const now = performance.now();
    const unit = job.kind === "blobs" ? "files" : "rows";
    let previous = null;
    for (const [name, s] of Object.entries(stats)) {
      let row = rows.get(name);
      if (!row) {
        row = $("table-template").content.firstElementChild.cloneNode(true);
        row.dataset.table = name;
        row.querySelector("[data-testid=table-name]").textContent = name;
        row.querySelector("[data-testid=table-name]").title = name;
      }
      rows.delete(name);
      const wanted = previous ? previous.nextElementSibling : box.firstElementChild;
      if (wanted !== row) box.insertBefore(row, wanted);
      previous = row;

      const total = Number(s.total) || 0;
      const migrated = Number(s.migrated) || 0;
      const failed = Number(s.failed) || 0;
      const done = migrated + (Number(s.skipped) || 0) + failed;
      const bar = row.querySelector("progress");
      bar.max = Math.max(total, 1);
      bar.value = Math.min(done, bar.max);
      bar.dataset.migrated = String(migrated);
      row.dataset.failed = failed > 0 ? "1" : "0";

      let label = job.dry_run && migrated === 0
        ? `${numbers.format(total)} ${unit}`
        : `${numbers.format(migrated)} / ${numbers.format(total)} ${unit}`;
      if (failed) label += ` · ${numbers.format(failed)} failed`;
      row.querySelector("[data-testid=table-rows]").textContent = label;
      // The live rate only for a table in flight (a finished or waiting one would read
      // "0 rows/s"); a finished table shows its average when the server timed it.
      const moving = active && done > 0 && done < total;
      const speed = active ? rate(job.id, name, done, now, unit) : "";
      const elapsed = Number(s.elapsed_s) || 0;
      const average = !moving && elapsed > 0 && done > 0 ? `avg ${compact(done / elapsed)} ${unit}/s` : "";
      row.querySelector("[data-testid=table-rate]").textContent = moving ? speed : average;
    }
    for (const row of rows.values()) row.remove();
  }

  // Rows per second between two polls, smoothed so one slow poll does not make it jump.
  function rate(jobId, table, rows, now, unit) {
    const key = `${jobId}\u0000${table}`;
    const last = state.rates.get(key);
    const entry = { rows, at: now, rate: last ? last.rate : null };
    if (last && now - last.at >= 200) {
      const instant = Math.max(0, ((rows - last.rows) * 1000) / (now - last.at));
      entry.rate = last.rate === null ? instant : 0.5 * last.rate + 0.5 * instant;
    } else if (last) {
      entry.rows = last.rows;
      entry.at = last.at;
    }
    state.rates.set(key, entry);
    return entry.rate === null ? "" : `${compact(entry.rate)} ${unit}/s`;
  }

  function compact(n) {
    if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
    if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
    if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
    return String(Math.round(n));
  }

  function updateSummary(el, job, totals, finished) {
    const box = el.querySelector("[data-testid=job-summary]");
    box.hidden = !finished;
    if (!finished) return;
    const unit = job.kind === "blobs" ? "files" : "rows";
    const items = unit === "rows" ? [["tables", totals.tables]] : [];
    items.push([job.dry_run ? `${unit} counted` : unit, totals.total]);
    if (!job.dry_run) items.push(["migrated", totals.migrated], ["skipped", totals.skipped], ["failed", totals.failed]);
    const took = duration(job.started_at, job.finished_at);
    box.replaceChildren(
      ...items.map(([label, value]) => summaryItem(label, numbers.format(value))),
      ...(took ? [summaryItem("took", took, true)] : []),
    );
  }

  function summaryItem(label, value, labelFirst = false) {
    const span = document.createElement("span");
    span.dataset.summary = label;
    const b = document.createElement("b");
    b.textContent = value;
    if (labelFirst) span.append(`${label} `, b);
    else span.append(b, ` ${label}`);
    return span;
  }

  function updateErrors(el, stats) {
    const box = el.querySelector("[data-testid=job-errors]");
    const list = [];
    for (const [table, s] of Object.entries(stats)) {
      for (const message of Array.isArray(s.errors) ? s.errors : []) list.push([table, message]);
    }
    box.hidden = list.length === 0;
    if (!list.length) return;
    box.querySelector("summary").textContent = `${numbers.format(list.length)} error${list.length === 1 ? "" : "s"}`;
    const ul = box.querySelector("ul");
    if (ul.childElementCount === list.length) return;
    ul.replaceChildren(
      ...list.map(([table, message]) => {
        const li = document.createElement("li");
        const code = document.createElement("code");
        code.textContent = table;
        li.append(code, " ", typeof message === "string" ? message : JSON.stringify(message));
        return li;
      }),
    );
  }

  function timeLine(job) {
    const parts = [];
    if (job.created_at) parts.push(`created ${when(job.created_at)}`);
    const took = duration(job.started_at, job.finished_at);
    if (job.finished_at && took) parts.push(`ran ${took}`);
    else if (job.started_at && ACTIVE.has(job.status)) parts.push(`running ${duration(job.started_at, new Date().toISOString()) || "0s"}`);
    const helpers = job.helpers || [];
    if (helpers.length) parts.push(`helped by ${helpers.length} other server${helpers.length === 1 ? "" : "s"}`);
    return parts.join(" · ");
  }

  function when(value) {
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) return String(value);
    const sameDay = d.toDateString() === new Date().toDateString();
    return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
  }

  function duration(from, to) {
    const a = Date.parse(from);
    const b = Date.parse(to);
    if (Number.isNaN(a) || Number.isNaN(b) || b < a) return "";
    let s = Math.round((b - a) / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    s %= 60;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  // --- actions -------------------------------------------------------------------------

  function list(value) {
    return value.split(",").map((s) => s.trim()).filter(Boolean);
  }

  function hasPassword(url) {
    return /^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(url);
  }

  async function onStartJob(event) {
    event.preventDefault();
    const dryRun = event.submitter ? event.submitter.dataset.dryRun === "true" : false;
    const body = {
      source_url: $("job-source").value.trim(),
      target_url: $("job-target").value.trim(),
      force: $("job-force").checked,
      ignore_errors: $("job-ignore-errors").checked,
    };
    const tables = list($("job-tables").value);
    const exclude = list($("job-exclude").value);
    if (tables.length) body.tables = tables;
    if (exclude.length) body.exclude = exclude;
    for (const [field, id] of [["batch_size", "job-batch-size"], ["workers", "job-workers"]]) {
      const raw = $(id).value.trim();
      if (raw) body[field] = Number(raw);
    }
    showFormError("job-form-error", "");
    await submitJob([$("job-start"), $("job-dry-run")], "job-form-error", `/admin/migrations/copy${dryRun ? "/dry-run" : ""}`, body, () => {
      // A URL with a password should not stay on screen once the server has it.
      for (const id of ["job-source", "job-target"]) if (hasPassword($(id).value)) $(id).value = "";
    });
  }

  async function onStartCutover(event) {
    event.preventDefault();
    const step = event.submitter ? event.submitter.dataset.step : "check";
    showFormError("cutover-form-error", "");
    let body;
    try {
      body = JSON.parse($("cutover-body").value);
    } catch (e) {
      showFormError("cutover-form-error", `The request is not JSON: ${e.message}`);
      return;
    }
    if (body && typeof body === "object" && !Array.isArray(body) && $("cutover-force").checked) body.force = true;
    await submitJob([$("cutover-check"), $("cutover-sync")], "cutover-form-error", `/admin/cutover/${step === "sync" ? "sync" : "check"}`, body, () => {
      // Secrets should not stay on screen once the server has them.
      if (body && body.secrets) $("cutover-body").value = "";
    });
  }

  // Posts a form's job with its buttons disabled meanwhile; `sent` runs once the server has
  // the request, before the list is refreshed.
  async function submitJob(buttons, errorId, path, body, sent) {
    buttons.forEach((b) => (b.disabled = true));
    try {
      await api("POST", path, body);
      sent();
      refreshNow();
    } catch (e) {
      if (e.status === 401) handleApiError(e, "action");
      else showFormError(errorId, e.message);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  function resetCancel(button) {
    clearTimeout(button._revert);
    button.dataset.confirm = "0";
    button.textContent = "Cancel";
    button.disabled = false;
  }

  // Two clicks: the first arms the button, the second sends the DELETE. No browser dialog.
  async function onCancel(event) {
    const button = event.currentTarget;
    const id = button.closest("[data-job-id]").dataset.jobId;
    if (button.dataset.confirm !== "1") {
      button.dataset.confirm = "1";
      button.textContent = "Confirm cancel";
      button._revert = setTimeout(() => resetCancel(button), 5000);
      return;
    }
    clearTimeout(button._revert);
    button.disabled = true;
    button.textContent = "Cancelling…";
    try {
      await api("DELETE", `/admin/migrations/${encodeURIComponent(id)}`);
      clearError("action");
    } catch (e) {
      resetCancel(button);
      handleApiError(e, "action");
    }
    refreshNow();
  }

  function onMore() {
    state.count = Math.min(state.count + PAGE, MAX_PAGE);
    refreshNow();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", onLogin);
    $("job-form").addEventListener("submit", onStartJob);
    $("cutover-form").addEventListener("submit", onStartCutover);
    $("logout").addEventListener("click", () => logout(""));
    $("jobs-more").addEventListener("click", onMore);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && loggedIn()) refreshNow();
    });
    showSession();
  });
})();
