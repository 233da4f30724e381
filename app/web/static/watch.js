// The watch page's extras: adaptive playback, copying the share link, deleting the video, and its processing
// as it goes.

import { playAdaptive, playProgressive } from "./player.js";
import { seekPreviews } from "./storyboard.js";
import { write } from "./token.js";
import { offerCaptionEditing } from "./captions.js";
import { followAll } from "./work.js";

const player = document.getElementById("player");
const qualityMenu = document.getElementById("quality-menu");
if (player.dataset.hls) playAdaptive(player, player.dataset.hls, qualityMenu);
else playProgressive(player);
const seek = seekPreviews(player, document.getElementById("seek"));

// Once processed, the video has its poster, its seek previews, and its renditions: they play from then on, unless the
// original has started playing meanwhile (it is not cut off).
followAll(document, async (update) => {
  if (update.status !== "ready") return;
  const name = document.getElementById("delete-button").dataset.name;
  const response = await fetch(`/video/${encodeURIComponent(name)}`);
  const info = response.ok ? await response.json() : {};
  if (info.poster_url) player.poster = info.poster_url;
  if (info.storyboard_url) seek.showStoryboard(info.storyboard_url);
  if (info.hls_url && !player.dataset.hls && player.paused && player.currentTime === 0) {
    player.dataset.hls = info.hls_url;
    playAdaptive(player, info.hls_url, qualityMenu);
  }
});

const status = document.getElementById("watch-status");
offerCaptionEditing(document.getElementById("caption-upload"), document.getElementById("delete-button").dataset.name,
                   status);
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

function remove(name) {
  return write(`/video/${encodeURIComponent(name)}`, { method: "DELETE" });
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
