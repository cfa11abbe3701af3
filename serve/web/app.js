// roomcast host page: live status by Server-Sent Events, local start times.
"use strict";
(function () {
  const csrf = (document.querySelector('meta[name="csrf"]') || {}).content || "";
  const form = document.getElementById("start-form");
  if (form) {
    form.addEventListener("submit", function () {
      const when = document.getElementById("when").value;
      document.getElementById("start_at").value = when ? new Date(when).toISOString().replace(/\.\d+Z$/, "Z") : "";
    });
  }
  if (document.body.dataset.page !== "home" || !window.EventSource) return;
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  function liveCard(b) {
    const a = el("article", "card live");
    a.dataset.id = b.id;
    const h = el("h3");
    h.append(el("span", "state " + b.state, b.state), " " + b.room);
    a.append(h);
    const dl = el("dl");
    const row = (k, cls, v) => { dl.append(el("dt", "", k), el("dd", cls, v)); };
    row("Elapsed", "elapsed", Math.round(b.elapsed_seconds) + " s");
    row("Speakers", "speakers", String(b.speakers));
    row("On screen", "speaker-names", (b.speaker_names || []).join(", "));
    if (b.hls) {
      row("Viewers", "viewers", String(b.viewers));
      const dd = el("dd", "watch-link");
      const link = el("a", "watch", b.watch_url || "");
      link.href = b.watch_url || "";
      link.target = "_blank";
      link.rel = "noopener";
      dd.append(link);
      dl.append(el("dt", "", "Watch page"), dd);
    }
    row("Output", "fps", b.output_fps.toFixed(1) + " fps");
    row("Bitrate", "bitrate", Math.round(b.bitrate_kbps) + " kb/s");
    row("Dropped", "dropped", String(b.dropped_frames));
    a.append(dl);
    const ul = el("ul", "dests");
    (b.destination_states || []).forEach(d => {
      const li = el("li", "", d.name + ": " + d.state + " (" + d.reconnects + " reconnects)");
      if (d.message) li.append(el("div", "small error-text dest-error", d.message));
      ul.append(li);
    });
    a.append(ul);
    const f = el("form");
    f.method = "post";
    f.action = "/broadcasts/" + encodeURIComponent(b.id) + "/stop";
    const c = el("input");
    c.type = "hidden"; c.name = "csrf"; c.value = csrf;
    f.append(c, el("button", "stop", "Stop"));
    a.append(f);
    return a;
  }
  function pastRow(b) {
    const tr = el("tr");
    tr.dataset.id = b.id;
    const st = el("td");
    st.append(el("span", "state " + b.state, b.state));
    if (b.error) st.append(el("div", "small error-text", b.error));
    const room = el("td", "", b.room);
    if (b.watch_url) {
      const d = el("div", "small");
      const link = el("a", "watch", "watch page");
      link.href = b.watch_url;
      link.target = "_blank";
      link.rel = "noopener";
      d.append(link);
      room.append(d);
    }
    tr.append(room, st, el("td", "", b.started || b.start_at || ""), el("td", "", Math.round(b.elapsed_seconds) + " s"));
    return tr;
  }
  const es = new EventSource("/api/v1/events");
  es.addEventListener("status", function (ev) {
    const data = JSON.parse(ev.data);
    const live = document.getElementById("live");
    const past = document.querySelector("#past tbody");
    const running = data.broadcasts.filter(b => b.state === "live" || b.state === "starting" || b.state === "stopping");
    const rest = data.broadcasts.filter(b => running.indexOf(b) < 0);
    // Update cards in place (a Stop button must not vanish under the
    // pointer); add new ones, remove ended ones.
    const keep = new Set(running.map(b => b.id));
    live.querySelectorAll("article.live").forEach(a => { if (!keep.has(a.dataset.id)) a.remove(); });
    const empty = live.querySelector("p.muted");
    if (running.length && empty) empty.remove();
    if (!running.length && !empty) live.append(el("p", "muted", "Nothing live."));
    running.forEach(b => {
      const a = live.querySelector('article.live[data-id="' + CSS.escape(b.id) + '"]');
      if (!a) { live.append(liveCard(b)); return; }
      const fresh = liveCard(b);
      a.querySelector("h3").replaceWith(fresh.querySelector("h3"));
      a.querySelector("dl").replaceWith(fresh.querySelector("dl"));
      a.querySelector("ul.dests").replaceWith(fresh.querySelector("ul.dests"));
    });
    past.replaceChildren(...rest.map(pastRow));
    document.body.dataset.updated = String(Date.now());
  });
})();
