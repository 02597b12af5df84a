// The operator page of `daglo serve`. Plain JavaScript, no build step, no framework. Every
// value from the service is put into the page as text (textContent), never as HTML.
"use strict";

const $ = (selector) => document.querySelector(selector);
const ENDED = new Set(["finished", "failed", "gave_up", "uncertain", "not_submitted"]);
const state = { key: null, jobs: new Map(), streams: new Map(), selected: null, cursor: null, offline: null };
const PAGE = 50;

// A time as the operator reads it: their local time, with its zone named.
function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
}

// What a job transcribes, short: the file name of an upload, the last part of a URL.
function inputOf(job) {
  const input = String(job.input || "");
  if (input.startsWith("upload:")) return input.slice(7);
  try {
    const url = new URL(input);
    return url.host + (url.pathname.length > 1 ? "/…/" + url.pathname.split("/").pop() : "");
  } catch (_) {
    return input;
  }
}

// An error message from the service, as words (the API quotes names in backticks).
function words(message) {
  return String(message || "").replace(/`/g, "");
}

function said(message, bad) {
  const box = $("#action-status");
  box.textContent = message;
  box.classList.toggle("bad", Boolean(bad));
}

// The service does not answer (stopped, restarting, the network): say so in words, and try
// again every few seconds until it answers; then reload what the page shows.
function offline(down) {
  const box = $("#offline");
  if (!down) {
    if (state.offline !== null) {
      clearTimeout(state.offline);
      state.offline = null;
      box.hidden = true;
      loadJobs();
    }
    return;
  }
  box.textContent = "The service does not answer: it may be stopped or restarting, or the network is down. " +
    "This page tries again every 5 seconds and carries on by itself when it answers.";
  box.hidden = false;
  if (state.offline === null) {
    const retry = async () => {
      try {
        const answer = await fetch("/healthz", { cache: "no-store" });
        if (answer.ok) { state.offline = -1; offline(false); return; }
      } catch (_) { /* still down */ }
      state.offline = setTimeout(retry, 5000);
    };
    state.offline = setTimeout(retry, 5000);
  }
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + state.key }, options.headers || {});
  let answer;
  try {
    answer = await fetch(path, Object.assign({}, options, { headers }));
  } catch (error) {
    if (error.name === "AbortError") throw error;
    offline(true);
    throw new Error("The service does not answer.");
  }
  if (state.offline !== null) offline(false);
  if (answer.status === 401) {
    disconnect();
    throw new Error("The API key was refused.");
  }
  return answer;
}

async function apiJson(path, options) {
  const answer = await api(path, options);
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const error = new Error(words(body.error) || ("HTTP " + answer.status));
    error.code = body.code;
    error.body = body;
    throw error;
  }
  return body;
}

function connect(key) {
  state.key = key;
  sessionStorage.setItem("daglo-api-key", key);
  $("#locked").hidden = true;
  $("#workspace").hidden = false;
  $("#disconnect").hidden = false;
  $("#connect-button").hidden = true;
  $("#api-key").value = "";
  $("#api-key").hidden = true;
  $("label[for=api-key]").hidden = true;
  loadJobs();
}

function disconnect() {
  state.key = null;
  sessionStorage.removeItem("daglo-api-key");
  for (const controller of state.streams.values()) controller.abort();
  state.streams.clear();
  state.jobs.clear();
  $("#jobs tbody").replaceChildren();
  $("#detail").hidden = true;
  $("#workspace").hidden = true;
  $("#locked").hidden = false;
  $("#disconnect").hidden = true;
  $("#connect-button").hidden = false;
  $("#api-key").hidden = false;
  $("label[for=api-key]").hidden = false;
}

// How many jobs the list shows, and whether older ones follow.
function counted() {
  const n = document.querySelectorAll("#jobs tbody tr").length;
  $("#count").textContent = n + (n === 1 ? " job" : " jobs") + " shown" + (state.cursor ? "; older ones follow" : "");
  $("#no-jobs").hidden = n > 0;
}

function failedJob(job) {
  return ["failed", "not_submitted", "gave_up", "uncertain"].includes(job.state);
}

function percentOf(job) {
  if (job.state === "finished") return 100;
  return Math.max(0, Math.min(100, Number(job.progress) || 0));
}

function renderRow(job, options = {}) {
  let row = document.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.jobId = job.id;
    row.addEventListener("click", () => select(job.id));
    if (options.append) $("#jobs tbody").append(row);
    else $("#jobs tbody").prepend(row);
    counted();
  }
  const percent = percentOf(job);
  const bar = el("div", null, "bar" + (job.state === "finished" ? " done" : failedJob(job) ? " failed" : ""));
  bar.dataset.progress = String(percent);
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuenow", String(percent));
  const fill = el("span");
  fill.style.width = percent + "%";
  bar.append(fill);
  const progress = el("div", null, "progress-cell");
  progress.append(bar, el("span", percent + " %", "bar-label"));
  const stateCell = el("td");
  stateCell.append(el("span", job.state, "state " + job.state));
  if (job.reason && failedJob(job)) stateCell.append(el("span", job.reason, "reason"));
  const progressCell = el("td");
  progressCell.append(progress);
  const input = el("td", inputOf(job), "input");
  input.title = String(job.input || "");
  const key = el("td", job.key || "—", "wide");
  const id = el("td", job.id, "wide");
  row.replaceChildren(input, key, stateCell, progressCell, id, el("td", when(job.created_at)));
  row.dataset.state = job.state;
  row.classList.toggle("selected", state.selected === job.id);
}

function query() {
  const params = new URLSearchParams({ limit: String(PAGE) });
  const wanted = $("#filter-state").value;
  const label = $("#filter-label").value.trim();
  if (wanted) params.set("state", wanted);
  if (label) params.set("label", label);
  return params.toString();
}

// The first page of jobs (newest first), or with `older` the next page after the last shown.
async function loadJobs(older) {
  if (!state.key) return;
  const more = older === true && state.cursor;
  try {
    const page = await apiJson("/v1/jobs?" + query() + (more ? "&cursor=" + encodeURIComponent(state.cursor) : ""));
    if (!more) {
      state.jobs.clear();
      $("#jobs tbody").replaceChildren();
    }
    for (const job of page.jobs) {
      state.jobs.set(job.id, job);
      renderRow(job, { append: true });
      if (!ENDED.has(job.state)) follow(job.id);
    }
    state.cursor = page.next_cursor;
    $("#more").hidden = !page.next_cursor;
    counted();
    showError("");
  } catch (error) {
    if (!more) {
      // A list that no longer matches the filter is not left on screen under its error.
      state.jobs.clear();
      $("#jobs tbody").replaceChildren();
      $("#more").hidden = true;
      $("#count").textContent = "";
    }
    showError(error.message);
  }
}

// Server-Sent Events through fetch, so the key goes in a header (EventSource cannot send one).
// A stream that ends before its job's `ended` (a restart, a proxy that cut it, a network
// blip) is opened again after a pause that doubles up to 30 s, with `Last-Event-ID`, so the
// service sends only what came after.
async function follow(id) {
  if (state.streams.has(id) || !state.key) return;
  const controller = new AbortController();
  state.streams.set(id, controller);
  let lastId = null;
  let pause = 1000;
  try {
    for (;;) {
      let ended = false;
      try {
        const headers = lastId === null ? {} : { "Last-Event-ID": lastId };
        const answer = await api(`/v1/jobs/${encodeURIComponent(id)}/events`, { signal: controller.signal, headers });
        if (answer.status === 204 || answer.status === 404) return;
        if (!answer.ok || !answer.body) throw new Error("HTTP " + answer.status);
        const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = "message";
            const data = [];
            for (const line of frame.split("\n")) {
              if (line.startsWith("event:")) name = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
              else if (line.startsWith("id:")) lastId = line.slice(3).trim();
            }
            if (!data.length) continue; // a keep-alive comment
            pause = 1000;
            await onEvent(id, name, JSON.parse(data.join("\n")));
            if (name === "ended") ended = true;
          }
        }
      } catch (error) {
        if (error.name === "AbortError") return;
        console.warn("events of", id, error);
      }
      if (ended) return;
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 30000);
      if (controller.signal.aborted) return;
    }
  } finally {
    state.streams.delete(id);
  }
}

async function onEvent(id, name, event) {
  const job = state.jobs.get(id) || { id };
  if (name === "submitted") job.rid = event.rid;
  if (name === "progress") {
    job.status = event.status;
    if (event.progress !== null && event.progress !== undefined) job.progress = event.progress;
    if (job.state === "submitting") job.state = "running";
  }
  if (name === "ended") {
    try {
      Object.assign(job, await apiJson(`/v1/jobs/${encodeURIComponent(id)}`));
    } catch (_) {
      job.state = event.state;
    }
  }
  state.jobs.set(id, job);
  renderRow(job);
  if (name === "ended" && state.uploaded === id) {
    $("#upload-status").textContent = `Job ${id} is ${job.state}.`;
  }
  if (state.selected === id) renderDetail(job, name === "ended");
}

async function select(id) {
  if (state.selected !== id) said("");
  state.selected = id;
  for (const row of document.querySelectorAll("#jobs tbody tr")) {
    row.classList.toggle("selected", row.dataset.jobId === id);
  }
  const job = state.jobs.get(id);
  if (job) renderDetail(job, true);
}

async function renderDetail(job, reload) {
  $("#detail").hidden = false;
  $("#detail-id").textContent = job.id;
  const reason = $("#detail-reason");
  reason.hidden = !(job.reason && failedJob(job));
  reason.textContent = job.reason ? `This job ${job.state === "failed" ? "failed" : "did not finish"}: ${job.reason}` : "";
  $("#delete").hidden = !["finished", "failed", "not_submitted"].includes(job.state);
  const fields = $("#detail-fields");
  fields.replaceChildren();
  const labels = Object.entries(job.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  for (const [name, value] of [
    ["state", job.state], ["status", job.status], ["progress", job.progress],
    ["tenant", job.tenant], ["rid", job.rid], ["key", job.key], ["labels", labels], ["input", job.input],
    ["strategy", job.strategy],
    ["outcome", typeof job.outcome === "string" ? job.outcome : job.outcome && JSON.stringify(job.outcome)],
    ["reason", job.reason], ["status requests", job.status_requests],
    ["created", when(job.created_at)], ["updated", when(job.updated_at)],
  ]) {
    if (value === undefined || value === null || value === "") continue;
    fields.append(el("dt", name), el("dd", value));
  }
  $("#resolve").hidden = job.state !== "uncertain";
  if (!reload) return;
  const path = `/v1/jobs/${encodeURIComponent(job.id)}`;
  const transcript = $("#transcript");
  transcript.classList.remove("failure");
  if (job.state === "finished" || job.state === "failed") {
    try {
      const answer = await api(path + "/transcript");
      if (answer.ok) {
        transcript.textContent = (await answer.text()) || "(no speech)";
      } else {
        const body = await answer.json().catch(() => ({}));
        transcript.textContent = body.code === "job_failed"
          ? "No transcript: the job failed (" + (body.reason || "no reason given") + ")."
          : "(not available: " + words(body.error || "HTTP " + answer.status) + ")";
        transcript.classList.toggle("failure", body.code === "job_failed");
      }
    } catch (error) {
      transcript.textContent = error.message;
    }
  } else {
    transcript.textContent = "(the transcript comes when the job finishes)";
  }
  try {
    const { callbacks } = await apiJson(path + "/callbacks");
    $("#callbacks tbody").replaceChildren(...callbacks.map((c) => {
      const row = el("tr");
      row.append(el("td", when(c.received_at)), el("td", c.status || "—"), el("td", c.progress ?? "—"),
        el("td", `${c.answer_code} ${c.answer}`));
      return row;
    }));
  } catch (error) {
    $("#callbacks tbody").replaceChildren();
  }
  try {
    const { deliveries, configured } = await apiJson(path + "/webhooks");
    $("#retry-webhook").hidden = !configured;
    const rows = [];
    for (const delivery of deliveries) {
      for (const attempt of delivery.attempts) {
        const row = el("tr");
        row.append(el("td", `${delivery.type} (${delivery.event_id})`), el("td", attempt.result),
          el("td", attempt.attempt), el("td", when(attempt.at)),
          el("td", attempt.code ? String(attempt.code) : (attempt.error || "—")));
        rows.push(row);
      }
    }
    if (!configured) {
      const row = el("tr");
      const cell = el("td", "No webhook is configured for this job's tenant ([webhook] in daglo.toml).", "muted");
      cell.colSpan = 5;
      row.append(cell);
      rows.push(row);
    }
    $("#webhooks tbody").replaceChildren(...rows);
  } catch (error) {
    $("#webhooks tbody").replaceChildren();
  }
}

async function upload(event) {
  event.preventDefault();
  const file = $("#file").files[0];
  if (!file) return;
  const form = new FormData();
  const key = $("#job-key").value.trim();
  if (key) form.append("key", key);
  const labels = {};
  for (const pair of $("#job-labels").value.split(",")) {
    if (!pair.trim()) continue;
    const [name, ...rest] = pair.split("=");
    if (!name.trim() || !rest.length) {
      showError(`Labels are name=value, separated by commas: "${pair.trim()}" is not.`);
      return;
    }
    labels[name.trim()] = rest.join("=").trim();
  }
  if (Object.keys(labels).length) form.append("labels", JSON.stringify(labels));
  form.append("file", file, file.name);
  $("#upload-status").textContent = `Uploading ${file.name}…`;
  try {
    const job = await apiJson("/v1/jobs", { method: "POST", body: form });
    $("#upload-status").textContent = `Job ${job.id} is ${job.state}.`;
    state.uploaded = job.id;
    state.jobs.set(job.id, job);
    renderRow(job);
    $("#no-jobs").hidden = true;
    select(job.id);
    if (!ENDED.has(job.state)) follow(job.id);
    showError("");
  } catch (error) {
    $("#upload-status").textContent = "";
    showError("Upload failed: " + error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#connect").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#api-key").value.trim();
    if (key) connect(key);
  });
  $("#disconnect").addEventListener("click", disconnect);
  $("#filters").addEventListener("submit", (event) => { event.preventDefault(); loadJobs(); });
  $("#refresh").addEventListener("click", () => loadJobs());
  $("#more").addEventListener("click", () => loadJobs(true));
  $("#delete").addEventListener("click", async () => {
    const id = state.selected;
    if (!id) return;
    try {
      const answer = await api(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
      if (answer.status !== 204) {
        const body = await answer.json().catch(() => ({}));
        throw new Error(words(body.error) || "HTTP " + answer.status);
      }
      state.jobs.delete(id);
      const row = document.querySelector(`tr[data-job-id="${CSS.escape(id)}"]`);
      if (row) row.remove();
      counted();
      state.selected = null;
      $("#detail").hidden = true;
      showError("");
      $("#upload-status").textContent = `Deleted job ${id}: its transcript, callbacks and records are gone.`;
    } catch (error) { said("Delete failed: " + error.message, true); }
  });
  $("#upload").addEventListener("submit", upload);
  $("#replay").addEventListener("click", async () => {
    if (!state.selected) return;
    try {
      const replay = await apiJson(`/v1/jobs/${encodeURIComponent(state.selected)}/callbacks/replay`, { method: "POST" });
      const job = await apiJson(`/v1/jobs/${encodeURIComponent(state.selected)}`);
      state.jobs.set(job.id, job);
      renderRow(job);
      await renderDetail(job, true);
      const n = replay.replayed.length;
      said(`Replayed ${n} callback${n === 1 ? "" : "s"}; the job is ${job.state}.`);
    } catch (error) { said("Replay failed: " + error.message, true); }
  });
  $("#retry-webhook").addEventListener("click", async () => {
    if (!state.selected) return;
    const id = state.selected;
    try {
      const retry = await apiJson(`/v1/jobs/${encodeURIComponent(id)}/webhook/retry`, { method: "POST" });
      said(retry.status === "already_delivering"
        ? "A delivery of job.finished is already under way; its attempts appear below."
        : "Delivering job.finished again; its attempts appear below.");
      // The attempt is listed once made: show it as it comes.
      for (const wait of [500, 1500, 4000]) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        if (state.selected !== id) return;
        const job = state.jobs.get(id);
        if (job) await renderDetail(job, true);
      }
    } catch (error) { said("Deliver again failed: " + error.message, true); }
  });
  const resolve = async (body) => {
    if (!state.selected) return;
    try {
      const job = await apiJson(`/v1/jobs/${encodeURIComponent(state.selected)}/resolve`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      $("#resolve-status").textContent = `Settled: the job is ${job.state}.`;
      said(`Settled: the job is ${job.state}.`);
      state.jobs.set(job.id, job);
      renderRow(job);
      renderDetail(job, true);
      if (!ENDED.has(job.state)) follow(job.id);
    } catch (error) { $("#resolve-status").textContent = error.message; }
  };
  $("#resolve").addEventListener("submit", (event) => {
    event.preventDefault();
    const rid = $("#resolve-rid").value.trim();
    if (rid) resolve({ rid });
  });
  $("#resolve-release").addEventListener("click", () => resolve({ submitted: false }));
  const kept = sessionStorage.getItem("daglo-api-key");
  if (kept) connect(kept);
});
