// The library page: the upload area (drag and drop or picker, several files at once,
// a progress bar per file, cancel, automatic resume) and live insertion of new cards.

import { authHeaders, askForToken, forgetToken, tokenRequired } from "./token.js";
import { ResumableUpload, UploadCancelled } from "./tus.js";
import { followAll } from "./work.js";

const dropZone = document.getElementById("drop-zone");
const fileInput = document.getElementById("file-input");
const uploadList = document.getElementById("upload-list");
const grid = document.getElementById("grid");
const emptyLibrary = document.getElementById("empty-library");
const libraryCount = document.getElementById("library-count");
const maxBytes = Number(dropZone.dataset.maxBytes);

function formatBytes(bytes) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function explain(error) {
  if (error.status === 401) return "the access token was not accepted";
  if (error.status === 413) return `too large: this server accepts up to ${formatBytes(maxBytes)}`;
  if (error.status === 415) return error.message;
  return error.message || "the upload failed";
}

function uploadRow(file) {
  const row = document.createElement("li");
  row.className = "upload-item";
  row.innerHTML = `
    <span class="upload-name"></span>
    <progress max="100" value="0"></progress>
    <span class="upload-percent" aria-hidden="true">0%</span>
    <span class="upload-speed"></span>
    <span class="upload-status" role="status"></span>
    <button type="button" class="button secondary small upload-cancel">Cancel</button>`;
  row.querySelector(".upload-name").textContent = file.name;
  row.querySelector("progress").setAttribute("aria-label", `Upload progress of ${file.name}`);
  uploadList.prepend(row);
  return {
    row,
    progress(percent, bytesPerSecond) {
      row.querySelector("progress").value = percent;
      row.querySelector(".upload-percent").textContent = `${percent}%`;
      if (bytesPerSecond !== undefined) {
        row.querySelector(".upload-speed").textContent = `${formatBytes(Math.round(bytesPerSecond))}/s`;
      }
    },
    status(text, kind) {
      const status = row.querySelector(".upload-status");
      status.textContent = text;
      row.dataset.state = kind;
    },
    done() {
      row.querySelector(".upload-cancel").remove();
      row.querySelector(".upload-speed").textContent = "";
    },
  };
}

async function fetchCard(name) {
  const response = await fetch(`/fragments/card/${encodeURIComponent(name)}`);
  if (!response.ok) return null;
  const template = document.createElement("template");
  template.innerHTML = (await response.text()).trim();
  return template.content.firstElementChild;
}

// A card whose video has been processed is fetched again: it now has its poster.
async function refreshCard(name) {
  const card = await fetchCard(name);
  grid.querySelector(`[data-name="${CSS.escape(name)}"]`)?.replaceWith(card ?? "");
}

function followCard(card) {
  followAll(card, (update) => update.status === "ready" && refreshCard(card.dataset.name));
}

async function insertCard(videoUrl) {
  const name = decodeURIComponent(new URL(videoUrl).pathname.split("/").pop());
  const card = await fetchCard(name);
  if (!card) return;
  const previous = grid.querySelector(`[data-name="${CSS.escape(name)}"]`);
  if (previous) {
    previous.remove();
  } else {
    const total = Number(libraryCount.dataset.total) + 1;
    libraryCount.dataset.total = String(total);
    libraryCount.textContent = `${total} video${total === 1 ? "" : "s"}`;
  }
  grid.prepend(card);
  emptyLibrary.hidden = true;
  followCard(card);
}

for (const card of grid.querySelectorAll(".card")) followCard(card);

// Bytes sent so far as a percentage; 100% is kept for when the server has every byte.
function percentSent(done, total) {
  return Math.min(99, Math.floor((done / total) * 100));
}

async function upload(file) {
  const ui = uploadRow(file);
  if (file.size > maxBytes) {
    ui.status(`Refused: too large: this server accepts up to ${formatBytes(maxBytes)}`, "error");
    ui.done();
    return;
  }
  let lastTime = performance.now();
  let lastBytes = 0;
  let speed;
  const transfer = new ResumableUpload(file, {
    headers: authHeaders,
    onProgress(done, total) {
      const now = performance.now();
      if (now - lastTime > 400) {
        speed = ((done - lastBytes) * 1000) / (now - lastTime);
        lastTime = now;
        lastBytes = done;
      }
      ui.progress(percentSent(done, total), speed);
      ui.status(done < total ? "Uploading…" : "Processing…", "active");
    },
    onRetry(attempt) {
      ui.status(`Connection lost, resuming (attempt ${attempt})…`, "retrying");
    },
  });
  ui.row.querySelector(".upload-cancel").addEventListener("click", () => transfer.cancel());
  ui.status("Starting…", "active");
  for (let attempt = 0; ; attempt += 1) {
    try {
      const videoUrl = await transfer.start();
      ui.progress(100);  // the server has every byte and has stored the video
      ui.status("Done", "done");
      ui.done();
      await insertCard(videoUrl);
      return;
    } catch (error) {
      if (error instanceof UploadCancelled) {
        ui.status("Cancelled", "cancelled");
        ui.done();
        return;
      }
      if (error.status === 401 && tokenRequired() && attempt === 0) {
        forgetToken();
        if (await askForToken()) continue;
      }
      ui.status(`Refused: ${explain(error)}`, "error");
      ui.done();
      return;
    }
  }
}

function uploadAll(files) {
  for (const file of files) upload(file);
}

fileInput.addEventListener("change", () => {
  uploadAll([...fileInput.files]);
  fileInput.value = "";
});

for (const type of ["dragenter", "dragover"]) {
  dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const type of ["dragleave", "drop"]) {
  dropZone.addEventListener(type, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  uploadAll([...event.dataTransfer.files]);
});
