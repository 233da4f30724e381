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

// A write to the API, asking for the token again once if the one kept here is refused.
export async function write(url, init) {
  for (let attempt = 0; ; attempt += 1) {
    const response = await fetch(url, { ...init, headers: { ...init.headers, ...(await authHeaders()) } });
    if (response.status === 401 && tokenRequired() && attempt === 0) {
      forgetToken();
      if (await askForToken()) continue;
    }
    return response;
  }
}
