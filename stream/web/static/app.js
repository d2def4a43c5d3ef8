// The status page: polls /api/status, pulls each camera's preview frame by frame, sends uploads to /predict, and
// adds products from a camera ("Add product": /api/enroll).
"use strict";

const STATUS_INTERVAL_MS = 1000;
const TYPES = ["image/jpeg", "image/png", "image/webp"];
const cards = new Map();
let maxUploadMb = 10;

const $ = (id) => document.getElementById(id);
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const percent = (score) => `${(score * 100).toFixed(1)}%`;

function renderTopk(list, topk) {
  const rows = topk.map((entry) => {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = entry.label;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = percent(entry.score);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = percent(entry.score);
    li.append(bar, label, score);
    return li;
  });
  list.replaceChildren(...rows);
}

function cardFor(camera) {
  if (cards.has(camera.id)) return cards.get(camera.id);
  const card = $("camera-card").content.firstElementChild.cloneNode(true);
  card.dataset.camera = camera.id;
  card.querySelector(".camera-id").textContent = camera.id;
  card.querySelector(".source").textContent = camera.source;
  card.querySelector(".preview").alt = `live preview of ${camera.id}`;
  $("cameras").append(card);
  cards.set(camera.id, card);
  pullPreview(camera.id, card.querySelector(".preview"));
  setUpEnroll(camera.id, card);
  return card;
}

function renderCamera(camera) {
  const card = cardFor(camera);
  const set = (selector, text) => { card.querySelector(selector).textContent = text; };
  const state = card.querySelector(".state");
  state.textContent = camera.state;
  state.className = `badge state ${camera.state}`;
  set(".fps", camera.fps.toFixed(1));
  set(".latency", camera.latency_ms === null ? "–" : `${Math.round(camera.latency_ms)} ms`);
  set(".captured", camera.captured.toLocaleString());
  set(".classified", camera.classified.toLocaleString());
  set(".dropped", camera.dropped.toLocaleString());
  set(".reconnects", camera.reconnects.toLocaleString());
  set(".item", camera.item ? `on the lane: ${camera.item}` : "");
  const error = card.querySelector(".error");
  error.hidden = !camera.last_error;
  error.textContent = camera.last_error || "";
  renderTopk(card.querySelector(".topk"), camera.topk);
}

function renderStatus(status) {
  const health = $("health");
  health.textContent = status.healthy ? "healthy" : "unhealthy";
  health.className = `badge ${status.healthy ? "ok" : "bad"}`;
  const reasons = $("reasons");
  reasons.hidden = status.healthy;
  reasons.textContent = status.reasons.join("; ");
  $("model").textContent = `model ${status.model}`;
  $("uptime").textContent = `up ${formatDuration(status.uptime_s)}`;
  maxUploadMb = status.max_upload_mb;
  $("max-mb").textContent = maxUploadMb;
  status.cameras.forEach(renderCamera);
  for (const card of cards.values()) card.querySelector(".enroll").hidden = !status.can_add_products;
}

function formatBytes(bytes) {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

function formatDuration(seconds) {
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
}

async function pollStatus() {
  for (;;) {
    try {
      const response = await fetch("/api/status", { cache: "no-store" });
      if (response.ok) renderStatus(await response.json());
      else $("health").textContent = `status ${response.status}`;
    } catch (err) {
      $("health").textContent = "unreachable";
      $("health").className = "badge bad";
    }
    await delay(STATUS_INTERVAL_MS);
  }
}

// Each request waits on the server for a frame newer than the last one, so the server's rate cap paces the page.
async function pullPreview(camera, img) {
  let after = 0;
  for (;;) {
    if (document.hidden) { await delay(500); continue; }
    try {
      const response = await fetch(`/preview/${encodeURIComponent(camera)}.jpg?after=${after}`, { cache: "no-store" });
      if (!response.ok) { await delay(1000); continue; }
      after = Number(response.headers.get("X-Preview-Frame")) || after;
      const url = URL.createObjectURL(await response.blob());
      const old = img.src;
      img.src = url;
      await img.decode().catch(() => {});  // show (and number) a frame only once it is decoded
      img.dataset.frame = String(after);
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    } catch (err) {
      await delay(1000);
    }
  }
}

function showUploadStatus(text, isError = false) {
  const status = $("upload-status");
  status.textContent = text;
  status.className = isError ? "error" : "muted";
}

async function upload(file) {
  $("upload-result").replaceChildren();
  if (!TYPES.includes(file.type)) return showUploadStatus(`${file.name}: not a JPG, PNG or WebP image`, true);
  if (file.size > maxUploadMb * 1e6) return showUploadStatus(`${file.name}: larger than ${maxUploadMb} MB`, true);
  const image = $("upload-image");
  if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(file);
  $("upload-name").textContent = `${file.name} · ${formatBytes(file.size)}`;
  $("upload-preview").hidden = false;
  showUploadStatus("classifying…");
  const form = new FormData();
  form.append("file", file);
  try {
    const response = await fetch("/predict", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) return showUploadStatus(answer.error || `error ${response.status}`, true);
    showUploadStatus(`${answer.image.width}×${answer.image.height} ${answer.image.format}, ${answer.elapsed_ms} ms, model ${answer.model}`);
    renderTopk($("upload-result"), answer.topk);
  } catch (err) {
    showUploadStatus(`upload failed: ${err.message}`, true);
  }
}

function setUpUpload() {
  const zone = $("dropzone");
  $("file").addEventListener("change", (event) => { if (event.target.files.length) upload(event.target.files[0]); });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
}

async function postJson(url, body) {
  const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                      body: JSON.stringify(body || {}) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `error ${response.status}`);
  return answer;
}

function enrollText(session) {
  switch (session.state) {
    case "recording": return `recording ${session.elapsed_s.toFixed(1)} / ${session.seconds} s, ${session.frames} frames: turn the product slowly`;
    case "checking": return `checking ${session.frames} frames…`;
    case "ready": return `${session.views}. ${session.preview || ""} ${session.warning ? `⚠ ${session.warning}. ` : ""}Save to add "${session.label}".`;
    case "saved": return `saved: "${session.label}" is recognized from now on`;
    case "failed": return session.error;
    case "cancelled": return "cancelled";
    default: return "";
  }
}

// One session at a time on the server; the card that started it polls it until it is ready, saved or over.
function setUpEnroll(camera, card) {
  const form = card.querySelector(".enroll-form");
  const status = card.querySelector(".enroll-status");
  const save = card.querySelector(".enroll-save");
  const record = card.querySelector(".enroll-record");
  const show = (text, tone = "muted") => { status.textContent = text; status.className = `enroll-status small ${tone}`; };
  const follow = async () => {
    for (;;) {
      const session = await (await fetch("/api/enroll", { cache: "no-store" })).json();
      show(enrollText(session), session.state === "failed" ? "error" : session.state === "ready" && session.warning ? "warning" : "muted");
      save.hidden = session.state !== "ready";
      if (!["recording", "checking"].includes(session.state)) { record.disabled = false; return; }
      await delay(300);
    }
  };
  card.querySelector(".add-product").addEventListener("click", () => { form.hidden = false; show(""); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    record.disabled = true;
    save.hidden = true;
    try {
      await postJson("/api/enroll", { camera, label: form.label.value, seconds: Number(form.seconds.value) });
      await follow();
    } catch (err) {
      record.disabled = false;
      show(err.message, "error");
    }
  });
  save.addEventListener("click", async () => {
    try {
      show(enrollText(await postJson("/api/enroll/confirm")));
      save.hidden = true;
    } catch (err) {
      show(err.message, "error");
    }
  });
  card.querySelector(".enroll-cancel").addEventListener("click", async () => {
    await postJson("/api/enroll/cancel").catch(() => {});
    form.hidden = true;
    save.hidden = true;
    record.disabled = false;
    show("");
  });
}

setUpUpload();
pollStatus();
