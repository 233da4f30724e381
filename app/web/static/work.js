// Keeps every "Processing…" line of a page up to date from the video's events stream
// (GET /video/{name}/events), and says when the work is done or has failed, without a reload.

function show(element, update) {
  element.dataset.status = update.status;
  const text = element.querySelector(".work-text");
  if (update.status === "processing") {
    element.querySelector("progress").value = update.progress;
    text.textContent = `Processing… ${Math.round(update.progress * 100)}%`;
  } else if (update.status === "failed") {
    element.classList.add("failed");
    element.textContent = `Processing failed: ${update.status_reason}`;
  } else {
    element.textContent = "Ready";
  }
}

// Follows one status line until its video's work ends; then calls onEnd with the last update.
export function follow(element, onEnd = () => {}) {
  const name = element.dataset.workOf;
  const events = new EventSource(`/video/${encodeURIComponent(name)}/events`);
  events.addEventListener("status", (event) => {
    const update = JSON.parse(event.data);
    show(element, update);
    if (update.status !== "processing") {
      events.close();
      onEnd(update);
    }
  });
}

export function followAll(root, onEnd) {
  for (const element of root.querySelectorAll('[data-work-of][data-status="processing"]')) follow(element, onEnd);
}
