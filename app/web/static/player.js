// Adaptive playback on the watch page: the video's HLS ladder through hls.js (installed by the project's
// set-up from the npm registry, served under /static/vendor/), or natively where the browser plays HLS
// itself, with a quality menu; the progressive source in the page's <source> when neither can.

const HLS_MODULE = "/static/vendor/hls.js/hls.mjs";
const HLS_TYPE = "application/vnd.apple.mpegurl";

async function loadHls() {
  try {
    const module = await import(HLS_MODULE);
    return module.default.isSupported() ? module.default : null;
  } catch {
    return null; // not installed, or blocked: the progressive source plays
  }
}

// The quality menu: Auto, then each rendition from the smallest; Auto says what it plays now.
function offerQualities(hls, menu) {
  const select = menu.querySelector("select");
  const auto = new Option("Auto", "-1", true, true);
  select.replaceChildren(auto, ...hls.levels.map((level, index) => new Option(`${level.height}p`, String(index))));
  select.addEventListener("change", () => { hls.currentLevel = Number(select.value); });
  hls.on("hlsLevelSwitched", (_event, data) => {
    auto.textContent = `Auto (${hls.levels[data.level].height}p)`;
    select.dataset.playing = String(data.level);
  });
  menu.hidden = false;
}

// The progressive source: what the page plays without any script. data-playback says how it plays.
export function playProgressive(video) {
  if (video.hasAttribute("src")) {
    video.removeAttribute("src");
    video.load();
  }
  video.dataset.playback = "progressive";
}

export async function playAdaptive(video, hlsUrl, menu) {
  const Hls = await loadHls();
  if (Hls) {
    const hls = new Hls({ enableWorker: false }); // the page's policy allows no blob: workers; fMP4 needs none
    hls.on(Hls.Events.MANIFEST_PARSED, () => offerQualities(hls, menu));
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      hls.destroy();
      menu.hidden = true;
      video.append(...tracks.map((track) => track.cloneNode()));  // new elements: Chromium shows no cue of one moved back
      playProgressive(video);
    });
    // hls.js offers the captions itself, from the stream's SUBTITLES group: the page's own tracks would be
    // listed twice. They come back if the stream fails, for the progressive source (and native HLS keeps them:
    // Chromium's own player does not read a SUBTITLES group).
    const tracks = Array.from(video.querySelectorAll("track"), (track) => track.remove() ?? track);
    hls.loadSource(hlsUrl);
    hls.attachMedia(video);
    video.dataset.playback = "hls.js";
  } else if (video.canPlayType(HLS_TYPE)) {
    video.addEventListener("error", () => playProgressive(video), { once: true });
    video.src = hlsUrl;
    video.dataset.playback = "native";
  } else {
    playProgressive(video);
  }
}
