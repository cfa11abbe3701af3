// roomcast watch page: polls ./state every 5 s, plays ./hls/index.m3u8 with
// hls.js where Media Source Extensions exist, else with native HLS. Talks to
// this server only.
(function () {
  "use strict";
  var statusEl = document.getElementById("status");
  var player = document.getElementById("player");
  var video = document.getElementById("video");
  var unmute = document.getElementById("unmute");
  var speakersEl = document.getElementById("speakers");
  var viewersEl = document.getElementById("viewers");
  var src = "hls/index.m3u8";
  // A random ID per open page, only to count concurrent viewers.
  var id = Array.from(crypto.getRandomValues(new Uint8Array(12)), function (b) {
    return ("0" + b.toString(16)).slice(-2);
  }).join("");
  var state = "";
  var hls = null;
  var stalls = 0;
  // What the page went through, for tests and debugging: stalls counts
  // 'waiting' events, longestStall their longest duration in ms.
  window.roomcast = { player: "", stalls: 0, longestStall: 0, errors: [] };
  var waitingSince = 0;

  function attach(ended) {
    player.hidden = false;
    if (hls || video.src) return;
    var forced = new URLSearchParams(location.search).get("player");
    var canMSE = window.Hls && window.Hls.isSupported();
    var canNative = video.canPlayType("application/vnd.apple.mpegurl") !== "";
    if (canMSE && forced !== "native") {
      window.roomcast.player = "hls.js";
      hls = new window.Hls({ liveSyncDurationCount: 3, enableWorker: true, lowLatencyMode: false });
      hls.on(window.Hls.Events.ERROR, function (_, d) {
        window.roomcast.errors.push(d.details + (d.fatal ? " (fatal)" : ""));
        if (!d.fatal) return;
        if (d.type === window.Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
        else if (d.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      });
      hls.loadSource(src);
      hls.attachMedia(video);
    } else if (canNative) {
      window.roomcast.player = "native";
      video.src = src;
    } else {
      statusEl.textContent = "This browser cannot play the broadcast.";
      return;
    }
    play();
  }

  function play() {
    var p = video.play();
    if (p && p.catch) {
      p.catch(function () {
        // Autoplay with sound refused: play muted, offer sound.
        video.muted = true;
        unmute.hidden = false;
        video.play().catch(function () {});
      });
    }
  }
  unmute.addEventListener("click", function () {
    video.muted = false;
    unmute.hidden = true;
  });
  video.addEventListener("waiting", function () {
    stalls++;
    window.roomcast.stalls = stalls;
    waitingSince = performance.now();
  });
  video.addEventListener("playing", function () {
    if (waitingSince) {
      window.roomcast.longestStall = Math.max(window.roomcast.longestStall, performance.now() - waitingSince);
      waitingSince = 0;
    }
  });

  function show(s) {
    if (s.state !== state) {
      state = s.state;
      if (state === "soon") {
        statusEl.textContent = "The broadcast starts soon. This page starts playing by itself.";
      } else if (state === "live") {
        statusEl.textContent = "Live";
        attach(false);
      } else if (state === "ended") {
        statusEl.textContent = "The broadcast has ended. The replay is below.";
        if (hls && !video.ended && video.currentTime > 0) {
          // Keep playing what is loaded; hls.js reaches the end by itself.
        } else {
          attach(true);
        }
      }
    }
    document.body.dataset.state = state;
    speakersEl.textContent = s.speakers && s.speakers.length ? "On screen: " + s.speakers.join(", ") : "";
    viewersEl.textContent = s.viewers > 1 ? s.viewers + " watching" : "";
  }

  function poll() {
    fetch("state?v=" + id, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) show(s); })
      .catch(function () {})
      .then(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
