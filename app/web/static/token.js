// The access token for writes, asked for once and kept in this browser.

const KEY = "video-service-token";
let pendingPrompt = null;

export function tokenRequired() {
  return document.body.dataset.tokenRequired === "true";
}

export function forgetToken() {
  localStorage.removeItem(KEY);
}

function promptForToken() {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  input.value = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const token = dialog.returnValue === "ok" ? input.value.trim() : "";
      if (token) localStorage.setItem(KEY, token);
      resolve(token || null);
    }, { once: true });
  });
}

// Several uploads starting together share one prompt.
export function askForToken() {
  pendingPrompt ??= promptForToken().finally(() => { pendingPrompt = null; });
  return pendingPrompt;
}

// Headers for a write: none when the server is open, else the bearer token (asking if needed).
export async function authHeaders() {
  if (!tokenRequired()) return {};
  const token = localStorage.getItem(KEY) || (await askForToken());
  if (!token) throw new Error("an access token is needed to change the library");
  return { Authorization: `Bearer ${token}` };
}
