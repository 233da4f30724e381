// A small tus 1.0.0 client: creates an upload, sends it in chunks with progress,
// and after a dropped connection asks the server for its offset and carries on.

const TUS_VERSION = "1.0.0";
const CHUNK_BYTES = 8 * 1024 * 1024;
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000, 8000];
// How often to ask whether a complete upload has become a video (the server may be remuxing it).
const INGEST_POLL_MS = 2000;

export class UploadFailed extends Error {
  constructor(message, status = 0, retryable = false) {
    super(message);
    this.status = status;
    this.retryable = retryable;
  }
}

export class UploadCancelled extends Error {}

// Every byte arrived but the server is still turning them into a video: not a failure, just a wait.
class StillIngesting extends Error {}

function encodeMetadata(values) {
  const base64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  return Object.entries(values).map(([key, value]) => `${key} ${base64(value)}`).join(",");
}

function detailOf(xhr) {
  try {
    return JSON.parse(xhr.responseText).detail || "";
  } catch {
    return "";
  }
}

export class ResumableUpload {
  constructor(file, { endpoint = "/uploads/", headers = async () => ({}), onProgress = () => {}, onRetry = () => {} } = {}) {
    this.file = file;
    this.endpoint = new URL(endpoint, location.href).href;
    this.headers = headers;
    this.onProgress = onProgress;
    this.onRetry = onRetry;
    this.offset = 0;
    this.url = localStorage.getItem(this.storageKey());
    this.xhr = null;
    this.cancelled = false;
  }

  storageKey() {
    return `tus::${this.file.name}::${this.file.size}::${this.file.lastModified}`;
  }

  // Resolves with the video's URL once the server has the whole file and has stored the video.
  async start() {
    let failures = 0;
    let resync = Boolean(this.url);
    for (;;) {
      if (this.cancelled) throw new UploadCancelled("cancelled");
      try {
        if (!this.url) {
          await this.create();
        } else if (resync) {
          await this.syncOffset();
        }
        resync = false;
        const videoUrl = await this.sendChunk();
        failures = 0;
        if (videoUrl) {
          localStorage.removeItem(this.storageKey());
          return videoUrl;
        }
      } catch (error) {
        if (this.cancelled) throw new UploadCancelled("cancelled");
        if (error instanceof StillIngesting) {
          await this.pause(INGEST_POLL_MS);
          resync = true;
          continue;
        }
        if (!error.retryable || failures >= RETRY_DELAYS_MS.length) throw error;
        this.onRetry(failures + 1);
        await this.pause(RETRY_DELAYS_MS[failures++]);
        resync = true;
      }
    }
  }

  // Waits before a retry; a cancel ends the wait at once.
  pause(ms) {
    return new Promise((resolve) => {
      this.wake = resolve;
      setTimeout(resolve, ms);
    });
  }

  async cancel() {
    this.cancelled = true;
    this.wake?.();
    this.xhr?.abort();
    localStorage.removeItem(this.storageKey());
    if (this.url) {
      await this.request("DELETE", this.url).catch(() => {});
    }
  }

  async create() {
    const xhr = await this.request("POST", this.endpoint, {
      "Upload-Length": String(this.file.size),
      "Upload-Metadata": encodeMetadata({ filename: this.file.name, filetype: this.file.type || "application/octet-stream" }),
    });
    this.url = new URL(xhr.getResponseHeader("Location"), this.endpoint).href;
    this.offset = 0;
    localStorage.setItem(this.storageKey(), this.url);
    return this.finished(xhr);
  }

  async syncOffset() {
    try {
      const xhr = await this.request("HEAD", this.url);
      this.offset = Number(xhr.getResponseHeader("Upload-Offset"));
      this.finished(xhr);  // the last answer may have been lost after the server stored the video
    } catch (error) {
      if (error.status === 404 || error.status === 410) {  // expired or finished elsewhere: begin again
        localStorage.removeItem(this.storageKey());
        this.url = null;
        await this.create();
        return;
      }
      throw error;
    }
  }

  async sendChunk() {
    if (this.offset >= this.file.size) {
      if (this.finishedUrl) return this.finishedUrl;
      throw new StillIngesting("the server is still storing the video");
    }
    const chunk = this.file.slice(this.offset, Math.min(this.offset + CHUNK_BYTES, this.file.size));
    const xhr = await this.request("PATCH", this.url, {
      "Upload-Offset": String(this.offset),
      "Content-Type": "application/offset+octet-stream",
    }, chunk);
    this.offset = Number(xhr.getResponseHeader("Upload-Offset"));
    this.onProgress(this.offset, this.file.size);
    return this.finished(xhr);
  }

  finished(xhr) {
    this.finishedUrl = xhr.getResponseHeader("Video-URL");
    return this.finishedUrl;
  }

  async request(method, url, headers = {}, body = null) {
    const auth = await this.headers();
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open(method, url);
      for (const [name, value] of Object.entries({ "Tus-Resumable": TUS_VERSION, ...auth, ...headers })) {
        xhr.setRequestHeader(name, value);
      }
      if (body) {
        const base = this.offset;
        xhr.upload.onprogress = (event) => this.onProgress(base + event.loaded, this.file.size);
      }
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr);
        const retryable = xhr.status === 409 || xhr.status === 423 || xhr.status === 460 || xhr.status >= 500;
        reject(new UploadFailed(detailOf(xhr) || `the server answered ${xhr.status}`, xhr.status, retryable));
      };
      xhr.onerror = () => reject(new UploadFailed("the connection dropped", 0, true));
      xhr.onabort = () => reject(new UploadCancelled("cancelled"));
      xhr.send(body);
    });
  }
}
