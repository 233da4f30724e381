// Adding a caption track from the watch page: the file goes as it is to PUT /video/{name}/captions/{language};
// the page is loaded again to offer it (as a <track>, and in the HLS stream's subtitles).

import { write } from "./token.js";

export function offerCaptionUpload(panel, name, status) {
  const form = panel.querySelector("form");
  panel.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = form.elements;
    const query = new URLSearchParams();
    if (fields.label.value.trim()) query.set("label", fields.label.value.trim());
    if (fields.default.checked) query.set("default", "true");
    const url = `/video/${encodeURIComponent(name)}/captions/${encodeURIComponent(fields.language.value.trim())}`;
    status.textContent = "Uploading captions…";
    try {
      const response = await write(`${url}?${query}`, { method: "PUT", body: fields.file.files[0] });
      if (response.ok) {
        status.textContent = "Captions added.";
        location.reload();
        return;
      }
      status.textContent = `Could not add the captions: ${(await response.json()).detail}`;
    } catch (error) {
      status.textContent = `Could not add the captions: ${error.message}`;
    }
  });
}
