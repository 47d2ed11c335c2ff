"""The pages' one script, served at ``/app.js`` (the content security policy allows no
inline script). Errors are inserted as text, results as server-built HTML."""

APP_JS = r"""
"use strict";
const $ = (selector) => document.querySelector(selector);

function post(url, data, { onUploaded, onProgress } = {}) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    if (onProgress) xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    if (onUploaded) xhr.upload.onload = onUploaded;
    xhr.onload = () => resolve({ ok: xhr.status === 200, text: xhr.responseText });
    xhr.onerror = () => resolve({ ok: false, text: "The server cannot be reached; is crossmodal serve still running?" });
    xhr.send(data);
  });
}

async function upload(form) {
  const input = form.querySelector("input[type=file]");
  const status = $("#status"), error = $("#error"), results = $("#results");
  error.textContent = "";
  const file = input.files[0];
  if (!file) { error.textContent = "Choose a file first."; return; }
  if (file.size > Number(form.dataset.maxBytes)) {
    error.textContent = `${file.name} is larger than the ${Math.round(form.dataset.maxBytes / 1048576)} MB this server accepts.`;
    return;
  }
  results.innerHTML = "";
  const data = new FormData();
  data.append("file", file);
  const started = Date.now();
  let timer = null;
  form.querySelector("button").disabled = true;
  const answer = await post(form.dataset.endpoint, data, {
    onProgress: (part) => { status.textContent = `Uploading ${file.name}: ${Math.round(100 * part)} %`; },
    onUploaded: () => {
      const tick = () => { status.textContent = `Embedding ${file.name}… ${Math.round((Date.now() - started) / 1000)} s`; };
      tick();
      timer = setInterval(tick, 500);
    },
  });
  clearInterval(timer);
  form.querySelector("button").disabled = false;
  status.textContent = "";
  if (answer.ok) results.innerHTML = answer.text;
  else error.textContent = answer.text;
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
