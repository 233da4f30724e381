// Seek previews on the watch page: a seek bar of our own under the video (the native controls' bar lives in
// a shadow DOM no page can reach), kept in step with the video, which shows the storyboard's tile for a time
// and the time itself while the pointer hovers or drags over it, or while it is moved with the keyboard.
// The storyboard is a WebVTT thumbnails track (data-storyboard on the video, or set later with
// showStoryboard) whose cues name tiles of sprite sheets: "storyboard/<version>/0.jpg#xywh=x,y,w,h",
// relative to the track's URL. Until there is one, the preview shows the time alone. Without this module
// the bar stays hidden and the native controls are all there is.

const KEY_SECONDS = 5; // what an arrow key moves
const KEY_PREVIEW_MS = 2000; // how long a preview stays after the last key

const TIMING = /^(\d+):(\d{2}):(\d{2})\.(\d{3}) --> (\d+):(\d{2}):(\d{2})\.(\d{3})/;
const XYWH = /^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/;

function seconds(hours, minutes, secs, millis) {
  return Number(hours) * 3600 + Number(minutes) * 60 + Number(secs) + Number(millis) / 1000;
}

// The cues of a thumbnails track: [{start, end, url, x, y, width, height}], in order.
export function parseThumbnails(text, trackUrl) {
  const cues = [];
  for (const block of text.replace(/\r\n?/g, "\n").split(/\n{2,}/)) {
    const lines = block.split("\n");
    const at = lines.findIndex((line) => TIMING.test(line));
    const target = at >= 0 ? XYWH.exec(lines[at + 1] ?? "") : null;
    if (!target) continue;
    const t = TIMING.exec(lines[at]);
    cues.push({
      start: seconds(t[1], t[2], t[3], t[4]), end: seconds(t[5], t[6], t[7], t[8]),
      url: new URL(target[1], trackUrl).href,
      x: Number(target[2]), y: Number(target[3]), width: Number(target[4]), height: Number(target[5]),
    });
  }
  return cues;
}

// m:ss, or h:mm:ss from an hour on.
export function clock(time) {
  const whole = Math.max(0, Math.floor(time));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const secs = String(whole % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}

function cueAt(cues, time) {
  return cues.find((cue) => time >= cue.start && time < cue.end) ?? (cues.length && time >= cues.at(-1).start ? cues.at(-1) : null);
}

export function seekPreviews(video, seek) {
  const bar = seek.querySelector("#seek-bar");
  const preview = seek.querySelector("#seek-preview");
  const label = preview.querySelector("#seek-time");
  let cues = [];
  let dragging = false;
  let keyTimer = 0;
  let shown = [0, 0]; // the time and place the preview shows

  const duration = () => (Number.isFinite(video.duration) ? video.duration : 0);

  function follow() {
    if (!duration()) return;
    bar.max = String(duration());
    if (!dragging) bar.value = String(video.currentTime);
    seek.hidden = false;
  }

  function show(time, x) {
    shown = [time, x];
    const cue = cueAt(cues, time);
    if (cue) {
      preview.style.backgroundImage = `url("${cue.url}")`;
      preview.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      preview.style.width = `${cue.width}px`;
      preview.style.height = `${cue.height}px`;
    } else {
      preview.style.backgroundImage = preview.style.width = preview.style.height = "";
    }
    preview.classList.toggle("has-frame", Boolean(cue));
    label.textContent = clock(time);
    preview.hidden = false;
    const half = preview.offsetWidth / 2;
    preview.style.left = `${Math.min(Math.max(x, half), bar.offsetWidth - half)}px`;
  }

  function hide() {
    preview.hidden = true;
  }

  // The time under the pointer, and where it is along the bar.
  function pointed(event) {
    const box = bar.getBoundingClientRect();
    const x = Math.min(Math.max(event.clientX - box.left, 0), box.width);
    return [(x / box.width) * duration(), x];
  }

  // Where the bar's value is along it (the thumb, as near as can be told).
  function thumb() {
    return (Number(bar.value) / (duration() || 1)) * bar.offsetWidth;
  }

  function seekTo(time) {
    const target = Math.min(Math.max(time, 0), duration());
    bar.value = String(target);
    video.currentTime = target;
    return target;
  }

  bar.addEventListener("pointermove", (event) => {
    if (duration()) show(...pointed(event));
  });
  bar.addEventListener("pointerleave", () => { if (!dragging) hide(); });
  bar.addEventListener("pointerdown", () => { dragging = true; });
  window.addEventListener("pointerup", () => {
    if (!dragging) return;
    dragging = false;
    if (!bar.matches(":hover")) hide();
  });
  bar.addEventListener("input", () => {
    video.currentTime = Number(bar.value);
    show(Number(bar.value), thumb());
  });
  bar.addEventListener("keydown", (event) => {
    const moves = { ArrowRight: KEY_SECONDS, ArrowUp: KEY_SECONDS, ArrowLeft: -KEY_SECONDS, ArrowDown: -KEY_SECONDS };
    let target;
    if (event.key in moves) target = Number(bar.value) + moves[event.key];
    else if (event.key === "Home") target = 0;
    else if (event.key === "End") target = duration();
    else return;
    event.preventDefault();
    show(seekTo(target), thumb());
    clearTimeout(keyTimer);
    keyTimer = setTimeout(() => { if (!bar.matches(":hover")) hide(); }, KEY_PREVIEW_MS);
  });
  bar.addEventListener("blur", hide);

  for (const type of ["loadedmetadata", "durationchange", "timeupdate", "seeked"]) video.addEventListener(type, follow);
  follow();

  async function useStoryboard(url) {
    try {
      const response = await fetch(url);
      if (response.ok) cues = parseThumbnails(await response.text(), response.url);
    } catch {
      cues = []; // the preview shows the time alone
    }
    if (!preview.hidden) show(...shown); // a preview already showing gets its tile
  }
  if (video.dataset.storyboard) useStoryboard(video.dataset.storyboard);

  return {
    showStoryboard(url) {
      if (video.dataset.storyboard) return;
      video.dataset.storyboard = url;
      useStoryboard(url);
    },
  };
}
