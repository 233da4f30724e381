// A video's caption tracks on the watch page: adding one (the file goes as it is to
// PUT /video/{name}/captions/{language}) or removing one; the page is then loaded again to offer what is left
// (as <track>s, and in the HLS stream's subtitles).

import { write } from "./token.js";

// Sends a write; the page is loaded again once it is done, or the refusal is said in words.
async function change(url, init, status, done) {
  try {
    const response = await write(url, init);
    if (response.ok) {
      status.textContent = done;
      location.reload();
      return;
    }
    status.textContent = `Could not change the captions: ${(await response.json()).detail}`;
  } catch (error) {
    status.textContent = `Could not change the captions: ${error.message}`;
  }
}

export function offerCaptionEditing(panel, name, status) {
  const form = panel.querySelector("form");
  const tracks = `/video/${encodeURIComponent(name)}/captions`;
  panel.hidden = false;
  panel.querySelectorAll("button[data-language]").forEach((button) => {
    button.addEventListener("click", () => {
      status.textContent = "Removing captions…";
      change(`${tracks}/${encodeURIComponent(button.dataset.language)}`, { method: "DELETE" }, status,
             "Captions removed.");
    });
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const fields = form.elements;
    const query = new URLSearchParams();
    if (fields.label.value.trim()) query.set("label", fields.label.value.trim());
    if (fields.default.checked) query.set("default", "true");
    const url = `${tracks}/${encodeURIComponent(fields.language.value.trim())}?${query}`;
    status.textContent = "Uploading captions…";
    change(url, { method: "PUT", body: fields.file.files[0] }, status, "Captions added.");
  });
}
