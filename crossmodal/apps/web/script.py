"""The pages' one script, served at ``/app.js`` (the content security policy allows no
inline script). Errors are inserted as text, results as server-built HTML."""

APP_JS = r"""
"use strict";
const $ = (selector) => document.querySelector(selector);

function post(url, data, { onProgress } = {}) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    if (onProgress) xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => resolve({ ok: xhr.status === 200, text: xhr.responseText });
    xhr.onerror = () => resolve({ ok: false, text: "The server cannot be reached; is crossmodal serve still running?" });
    xhr.send(data);
  });
}

async function upload(form) {
  const input = form.querySelector("input[type=file]");
  const status = $("#status"), error = $("#error"), results = $("#results"), bar = $("#progress");
  const button = form.querySelector("button");
  error.textContent = "";
  const file = input.files[0];
  if (!file) { error.textContent = "Choose a file first."; return; }
  if (file.size > Number(form.dataset.maxBytes)) {
    error.textContent = `${file.name} is larger than the ${Math.round(form.dataset.maxBytes / 1048576)} MB this server accepts.`;
    return;
  }
  results.innerHTML = "";
  button.disabled = true;
  bar.hidden = false;
  bar.removeAttribute("value");
  const finish = (answer) => {
    button.disabled = false;
    bar.hidden = true;
    status.textContent = "";
    if (answer.ok) results.innerHTML = answer.text;
    else error.textContent = answer.text;
  };
  // Step 1: the upload, with its byte progress.
  const data = new FormData();
  data.append("file", file);
  data.append("kind", form.dataset.kind);
  const uploaded = await post("/api/upload", data, {
    onProgress: (part) => { bar.max = 1; bar.value = part; status.textContent = `Uploading ${file.name}: ${Math.round(100 * part)} %`; },
  });
  if (!uploaded.ok) { finish(uploaded); return; }
  const job = JSON.parse(uploaded.text);
  // Step 2: embedding and search; the bar follows the server's estimate when it has one.
  const started = Date.now();
  const length = job.seconds >= 60 ? `${(job.seconds / 60).toFixed(1)} min` : `${Math.round(job.seconds)} s`;
  const tick = () => {
    const elapsed = (Date.now() - started) / 1000;
    if (job.estimate) {
      bar.max = job.estimate;
      bar.value = Math.min(elapsed, job.estimate);
      status.textContent = `Embedding ${file.name} (${length}): ${Math.round(elapsed)} s of about ${Math.max(1, Math.round(job.estimate))} s`;
    } else {
      bar.removeAttribute("value");
      status.textContent = `Embedding ${file.name} (${length}): ${Math.round(elapsed)} s`;
    }
  };
  tick();
  const timer = setInterval(tick, 250);
  const query = new FormData();
  query.append("token", job.token);
  const answer = await post("/api/query", query);
  clearInterval(timer);
  finish(answer);
}

async function dub(button) {
  const out = $("#dub-result"), error = $("#error");
  error.textContent = "";
  const data = new FormData();
  data.append("token", button.dataset.token);
  data.append("rank", button.dataset.rank);
  data.append("keep_original", $("#keep") ? $("#keep").value : "0");
  out.textContent = "Dubbing…";
  document.querySelectorAll("button.dub").forEach((b) => { b.disabled = true; });
  const answer = await post("/api/dub", data);
  document.querySelectorAll("button.dub").forEach((b) => { b.disabled = false; });
  if (answer.ok) out.innerHTML = answer.text;
  else { out.textContent = ""; error.textContent = answer.text; }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = $("#upload-form");
  if (form) form.addEventListener("submit", (e) => { e.preventDefault(); upload(form); });
  document.addEventListener("click", (e) => {
    const button = e.target.closest("button.dub");
    if (button) dub(button);
  });
});
"""
