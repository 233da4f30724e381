// The watch page's extras: copying the share link, deleting the video, and its processing as it goes.

import { authHeaders, askForToken, forgetToken, tokenRequired } from "./token.js";
import { followAll } from "./work.js";

// Once processed, the video has its poster.
followAll(document, async (update) => {
  if (update.status !== "ready") return;
  const name = document.getElementById("delete-button").dataset.name;
  const response = await fetch(`/video/${encodeURIComponent(name)}`);
  const info = response.ok ? await response.json() : {};
  if (info.poster_url) document.getElementById("player").poster = info.poster_url;
});

const status = document.getElementById("watch-status");
const copyButton = document.getElementById("copy-button");
const deleteButton = document.getElementById("delete-button");
const shareLink = document.getElementById("share-link");

copyButton.hidden = false;
copyButton.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(shareLink.value);
    status.textContent = "Link copied.";
  } catch {
    shareLink.select();
    status.textContent = "Press Ctrl+C (or ⌘C) to copy the selected link.";
  }
});

async function remove(name) {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const response = await fetch(`/video/${encodeURIComponent(name)}`, { method: "DELETE", headers: await authHeaders() });
    if (response.status === 401 && tokenRequired() && attempt === 0) {
      forgetToken();
      if (await askForToken()) continue;
    }
    return response;
  }
}

// Asks in a modal dialog (keyboard-operable, Escape keeps the video); resolves whether to delete.
function confirmDeletion() {
  const dialog = document.getElementById("delete-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
  });
}

deleteButton.hidden = false;
deleteButton.addEventListener("click", async () => {
  const name = deleteButton.dataset.name;
  if (!(await confirmDeletion())) return;
  try {
    const response = await remove(name);
    if (response.ok) {
      location.assign("/");
      return;
    }
    status.textContent = `Could not delete: ${(await response.json()).detail}`;
  } catch (error) {
    status.textContent = `Could not delete: ${error.message}`;
  }
});
