// The playback page of `flussonic-backup serve` (plain browser JS, no build step).
// Reads /_api/streams.json (sources, streams, stored ranges, holes), draws one timeline per
// stream, and plays the backup with hls.js (served by the same server from node_modules):
// - a click on a timeline plays `index-{t}-3600.m3u8` (the archive from that second on);
// - "Play delayed" plays `timeshift_rel-{seconds}.m3u8` (the delayed channel);
// - hovering a timeline over stored video shows that moment's picture
//   (`images-{W}x{H}/seg-{t}-0.hls.jpg`, a key frame the server decodes; hidden when it cannot);
// - behind `serve --upstream` (the listing names the upstream's source) that source's streams play
//   at Flussonic's own URLs (`/{stream}/{file}`), which serve forwards to the server while it
//   answers and answers from the backup when it does not: a line under the player says which,
//   from each playlist's `X-Playback-Origin` header, and changes when the server stops.
// With auth on, the page is opened with `?token=…` and passes the token on to every request.

(() => {
  const REFRESH_MS = 10_000;
  const ARCHIVE_SECONDS = 3600;
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const withToken = (url) =>
    token ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : url;

  const $ = (id) => document.getElementById(id);
  const video = $("video");
  const state = { listing: undefined, playing: undefined, hls: undefined, errors: [] };
  // For tests and curious users: what played and every hls.js error seen.
  window.playback = state;

  const iso = (t) => new Date(t * 1000).toISOString().replace(".000Z", "Z");
  const hhmmss = (t) => iso(t).slice(11, 19);
  const duration = (s) => {
    s = Math.round(s);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h < 48 ? `${h} h${m ? ` ${m} min` : ""}` : `${Math.floor(h / 24)} d ${h % 24} h`;
  };
  const bytes = (n) => {
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i++;
    }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  };
  const streamPath = (source, stream) =>
    `/${encodeURIComponent(source)}/${stream.split("/").map(encodeURIComponent).join("/")}`;
  /** Where a player asks for a playlist: Flussonic's own URL when serve forwards it (--upstream). */
  const playPath = (source, stream) =>
    state.listing?.upstream?.source === source
      ? `/${stream.split("/").map(encodeURIComponent).join("/")}`
      : streamPath(source, stream);
  /** The thumbnail area asked for on hover (the server fits the frame into it). */
  const THUMB = "images-320x240";

  async function refresh() {
    let res;
    try {
      res = await fetch(withToken("/_api/streams.json"), { cache: "no-store" });
    } catch (e) {
      $("meta").textContent = `The server did not answer (${e.message}); retrying.`;
      return;
    }
    if (res.status === 403) {
      const body = await res.json().catch(() => ({}));
      $("meta").textContent = "";
      $("token-reason").textContent = token ? `The token was refused: ${body.error || res.status}.` : "";
      $("token-input").value = token;
      $("token-form").hidden = false;
      $("main").hidden = true;
      return;
    }
    if (!res.ok) {
      $("meta").textContent = `Listing the backup failed: HTTP ${res.status} ${await res.text()}`;
      return;
    }
    state.listing = await res.json();
    $("token-form").hidden = true;
    $("main").hidden = false;
    render();
  }

  function render() {
    const l = state.listing;
    const n = l.sources.reduce((k, s) => k + s.streams.length, 0);
    $("meta").textContent = `Bucket ${l.bucket} · ${n} stream(s) · updated ${hhmmss(l.now)} UTC`;
    const select = $("delay-stream");
    const chosen = select.value;
    select.textContent = "";
    const root = $("streams");
    root.textContent = "";
    for (const s of l.sources) {
      const h2 = document.createElement("h2");
      h2.textContent = `Source ${s.source}`;
      root.append(h2);
      if (s.streams.length === 0) root.append(paragraph("Nothing stored yet.", "meta"));
      for (const st of s.streams) {
        const id = `${s.source}/${st.stream}`;
        select.append(new Option(id, id));
        root.append(streamBlock(l, s.source, st));
      }
    }
    if (chosen) select.value = chosen;
    if (!select.value && select.options.length) select.selectedIndex = 0;
    suggestDelay();
  }

  function paragraph(text, cls) {
    const p = document.createElement("p");
    p.textContent = text;
    if (cls) p.className = cls;
    return p;
  }

  function streamBlock(l, source, st) {
    const div = document.createElement("div");
    div.className = "stream";
    div.dataset.source = source;
    div.dataset.stream = st.stream;
    const h3 = document.createElement("h3");
    h3.textContent = `${st.stream} `;
    const small = document.createElement("small");
    small.textContent = `(${st.format})`;
    h3.append(small);
    div.append(h3);
    const stored = st.backedUp.reduce((k, r) => k + r.to - r.from, 0);
    const newest = st.backedUp.length ? st.backedUp[st.backedUp.length - 1].to : undefined;
    div.append(
      paragraph(
        `${duration(stored)} stored in ${st.windows} window(s), ${bytes(st.bytes)}; ${st.holes.length} range(s) not in the backup; ` +
          (newest === undefined
            ? "nothing stored yet"
            : `newest copy ends ${iso(newest)} (${duration(l.now - newest)} ago)`),
        "meta",
      ),
    );
    const thumb = document.createElement("img");
    thumb.className = "thumb";
    thumb.dataset.role = "thumb";
    thumb.alt = "the picture at that moment";
    thumb.hidden = true;
    // No picture (no decoder on the server, a hole): hide it rather than show a broken image.
    thumb.addEventListener("error", () => {
      thumb.dataset.failed = thumb.dataset.src || "";
      thumb.hidden = true;
    });
    div.append(thumb);
    div.append(timeline(l, source, st));
    const hover = paragraph("", "hover");
    hover.dataset.role = "hover";
    div.append(hover);
    if (st.holes.length) {
      const ul = document.createElement("ul");
      ul.className = "holes";
      for (const h of st.holes.slice(-20).reverse()) {
        const li = document.createElement("li");
        li.textContent = `not in the backup ${iso(h.from)} – ${iso(h.to)} (${duration(h.to - h.from)})`;
        ul.append(li);
      }
      if (st.holes.length > 20) ul.append(paragraph(`… and ${st.holes.length - 20} older`));
      div.append(ul);
    }
    return div;
  }

  const NS = "http://www.w3.org/2000/svg";
  const LEFT = 60;
  const LANE = 18;

  function svgEl(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function timeline(l, source, st) {
    const width = Math.max(400, Math.min(1200, document.body.clientWidth - 50));
    const height = 8 + 2 * (LANE + 6) + 20;
    const from = st.retentionStart;
    const to = l.now;
    const span = Math.max(1, to - from);
    const x = (t) => LEFT + ((Math.min(Math.max(t, from), to) - from) / span) * (width - LEFT - 10);
    const svg = svgEl("svg", { class: "timeline", width, height, viewBox: `0 0 ${width} ${height}` });
    svg.setAttribute("aria-label", `timeline of ${source}/${st.stream}: click to play from that moment`);
    for (const t of ticks(from, to)) {
      svg.append(svgEl("line", { x1: x(t), x2: x(t), y1: 4, y2: height - 18, stroke: "#e4e7eb" }));
      svg.append(
        svgEl(
          "text",
          { x: x(t), y: height - 4, "text-anchor": "middle" },
          span > 2 * 86400 ? iso(t).slice(5, 16).replace("T", " ") : iso(t).slice(11, 16),
        ),
      );
    }
    const lanes = [
      { label: "backup", y: 8, ranges: st.backedUp, color: "#2f9e44", min: 0.5 },
      // The words and colours of functions/domain/coverage-words.ts: this page does not ask the
      // source, so a gap is "not in the backup" (not recorded, or not yet copied: `status` tells).
      { label: "not stored", y: 8 + LANE + 6, ranges: st.holes, color: "#c3c8cf", min: 3 },
    ];
    for (const lane of lanes) {
      svg.append(svgEl("text", { x: 4, y: lane.y + 13 }, lane.label));
      svg.append(
        svgEl("rect", { x: LEFT, y: lane.y, width: width - LEFT - 10, height: LANE, fill: "#f5f7fa" }),
      );
      for (const r of lane.ranges) {
        const rect = svgEl("rect", {
          x: x(r.from),
          y: lane.y,
          width: Math.max(lane.min, x(r.to) - x(r.from)),
          height: LANE,
          fill: lane.color,
        });
        rect.append(
          svgEl("title", {}, `${lane.label} ${iso(r.from)} – ${iso(r.to)} (${duration(r.to - r.from)})`),
        );
        svg.append(rect);
      }
    }
    const marker = svgEl("line", {
      y1: 2,
      y2: height - 18,
      stroke: "#1c7ed6",
      "stroke-width": 2,
      visibility: "hidden",
    });
    marker.dataset.role = "marker";
    svg.append(marker);
    const timeAt = (ev) => {
      const box = svg.getBoundingClientRect();
      const px = ((ev.clientX - box.left) / box.width) * width;
      if (px < LEFT) return undefined;
      return Math.round(from + ((px - LEFT) / (width - LEFT - 10)) * span);
    };
    // One picture per step of the timeline (about 300 across it), loaded once the pointer rests.
    const step = Math.max(10, Math.ceil(span / 300));
    let pending;
    svg.addEventListener("mousemove", (ev) => {
      const t = timeAt(ev);
      const block = svg.parentElement;
      const hover = block?.querySelector("[data-role=hover]");
      if (hover) hover.textContent = t === undefined ? "" : `${iso(t)} — click to play from here`;
      const thumb = block?.querySelector("[data-role=thumb]");
      if (!thumb) return;
      const stored = t !== undefined && st.backedUp.some((r) => t >= r.from && t < r.to);
      if (!stored) {
        thumb.hidden = true;
        return;
      }
      const at = Math.max(Math.floor(t / step) * step, st.backedUp.find((r) => t < r.to).from);
      const box = svg.getBoundingClientRect();
      thumb.style.left = `${Math.max(0, Math.min(ev.clientX - box.left - 80, box.width - 160))}px`;
      clearTimeout(pending);
      pending = setTimeout(() => {
        const src = withToken(`${streamPath(source, st.stream)}/${THUMB}/seg-${at}-0.hls.jpg`);
        if (thumb.dataset.src !== src) {
          thumb.dataset.src = src;
          thumb.dataset.at = String(at);
          thumb.src = src;
        }
        thumb.hidden = thumb.dataset.failed === src;
      }, 80);
    });
    svg.addEventListener("mouseleave", () => {
      clearTimeout(pending);
      const thumb = svg.parentElement?.querySelector("[data-role=thumb]");
      if (thumb) thumb.hidden = true;
    });
    svg.addEventListener("click", (ev) => {
      const t = timeAt(ev);
      if (t !== undefined) playArchive(source, st.stream, Math.min(t, to - 1));
    });
    svg.dataset.from = String(from);
    svg.dataset.to = String(to);
    svg.dataset.width = String(width);
    return svg;
  }

  function ticks(from, to) {
    const steps = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
    const step = steps.find((s) => (to - from) / s <= 12) || 604800;
    const out = [];
    for (let t = Math.ceil(from / step) * step; t <= to; t += step) out.push(t);
    return out;
  }

  function suggestDelay() {
    // The delayed channel needs a delay longer than the backup's lag (the newest copy's age).
    const [source, ...rest] = ($("delay-stream").value || "").split("/");
    const newest = newestStored(source, rest.join("/"));
    const input = $("delay");
    if (newest !== undefined && !input.dataset.touched) {
      input.value = String(Math.max(5, Math.ceil((state.listing.now - newest) / 300) * 5 + 5));
    }
  }

  function playArchive(source, stream, from) {
    play({
      kind: "archive",
      source,
      stream,
      from,
      url: `${playPath(source, stream)}/index-${from}-${ARCHIVE_SECONDS}.m3u8`,
      label: `${source}/${stream} from ${iso(from)} (archive, ${duration(ARCHIVE_SECONDS)})`,
    });
  }

  /** The stream's newest stored second (unix seconds), or undefined when nothing is stored. */
  function newestStored(source, stream) {
    const st = state.listing?.sources
      .find((s) => s.source === source)
      ?.streams.find((x) => x.stream === stream);
    return st?.backedUp.length ? st.backedUp[st.backedUp.length - 1].to : undefined;
  }

  function playDelayed() {
    const [source, ...rest] = $("delay-stream").value.split("/");
    const minutes = Number($("delay").value);
    const note = $("delay-note");
    note.hidden = true;
    note.textContent = "";
    if (!source || !(minutes > 0)) return;
    const seconds = Math.round(minutes * 60);
    // A delay shorter than the backup's lag cannot play (the server would answer 425): say so in
    // the form's own words and start nothing.
    const newest = newestStored(source, rest.join("/"));
    const name = `${source}/${rest.join("/")}`;
    if (newest === undefined) {
      note.textContent = `Nothing of ${name} is stored yet: there is no delayed channel to play.`;
      note.hidden = false;
      return;
    }
    const behindMinutes = Math.ceil((Date.now() / 1000 - newest) / 60);
    if (minutes < behindMinutes) {
      note.textContent = `The backup of ${name} is ${behindMinutes} min behind live; choose ${behindMinutes} minutes or more.`;
      note.hidden = false;
      return;
    }
    play({
      kind: "delayed",
      source,
      stream: rest.join("/"),
      delay: seconds,
      url: `${playPath(source, rest.join("/"))}/timeshift_rel-${seconds}.m3u8`,
      label: `${source}/${rest.join("/")} delayed by ${duration(seconds)} (timeshift_rel)`,
    });
  }

  function play(what) {
    state.playing = what;
    state.errors = [];
    const err = $("player-error");
    err.hidden = true;
    err.textContent = "";
    $("now-playing").textContent = `Playing ${what.label}`;
    showOrigin(undefined);
    if (state.hls) state.hls.destroy();
    const url = withToken(what.url);
    if (window.Hls?.isSupported()) {
      // An archive playlist is VOD (Flussonic's rule: EVENT only with dur=now or ?event=true), so
      // it starts at its beginning, the clicked moment; startPosition 0 keeps that for an EVENT one.
      const hls = new window.Hls({
        enableWorker: true,
        ...(what.kind === "archive" ? { startPosition: 0 } : {}),
      });
      state.hls = hls;
      hls.on(window.Hls.Events.ERROR, (_event, data) => {
        const code = data.response?.code;
        const text = typeof data.response?.data === "string" ? data.response.data : data.response?.text;
        const message = `${data.fatal ? "fatal " : ""}${data.type}/${data.details}${code ? ` (HTTP ${code}${text ? `: ${String(text).trim()}` : ""})` : ""}`;
        state.errors.push(message);
        if (data.fatal) {
          err.textContent = `Playback stopped: ${message}`;
          err.hidden = false;
          // hls.js keeps only the status line; the server says why in the body (e.g. a delay
          // shorter than the backup's lag): show that.
          if (code >= 400 && data.details === "manifestLoadError") {
            fetch(url)
              .then((r) => r.text())
              .then((why) => {
                if (state.playing === what && why.trim()) err.textContent = `Playback stopped: ${why.trim()}`;
              })
              .catch(() => {});
          }
        }
      });
      // Where each playlist came from (serve --upstream: the server, or the backup and why).
      hls.on(window.Hls.Events.LEVEL_LOADED, (_event, data) => showOrigin(data.networkDetails));
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url; // Safari plays HLS itself
    } else {
      err.textContent = "This browser can play neither hls.js (Media Source Extensions) nor HLS natively.";
      err.hidden = false;
      return;
    }
    video.play().catch(() => {
      // Autoplay with sound may be refused without a gesture: start muted, the user can unmute.
      video.muted = true;
      video.play().catch(() => {});
    });
  }

  /** The line under the player saying where the video comes from, from a playlist answer. */
  function showOrigin(answer) {
    const line = $("origin");
    const header = (name) =>
      answer && typeof answer.getResponseHeader === "function"
        ? answer.getResponseHeader(name)
        : answer?.headers?.get?.(name);
    if (!answer || !state.listing?.upstream || state.playing?.source !== state.listing.upstream.source) {
      line.textContent = "";
      line.hidden = true;
      return;
    }
    const origin = header("x-playback-origin");
    const why = header("x-playback-failover");
    line.textContent =
      origin === "server"
        ? "Video from the Flussonic server (serve forwards its URLs while it answers)"
        : `Video from the backup${why ? `: the server failed (${why})` : ""}`;
    line.dataset.origin = origin === "server" ? "server" : "backup";
    line.hidden = false;
  }

  /** Unix seconds of the frame on screen (hls.js maps it through EXT-X-PROGRAM-DATE-TIME). */
  state.playingSecond = () => {
    const date = state.hls?.playingDate;
    return date ? date.getTime() / 1000 : undefined;
  };

  function updateMarker() {
    const date = state.hls?.playingDate;
    const t = date ? date.getTime() / 1000 : undefined;
    if (t !== undefined && state.playing) {
      $("now-playing").textContent = `Playing ${state.playing.label} · at ${iso(Math.floor(t))}`;
    }
    for (const div of document.querySelectorAll(".stream")) {
      const marker = div.querySelector("[data-role=marker]");
      const svg = div.querySelector("svg");
      if (!marker || !svg) continue;
      const mine =
        state.playing &&
        div.dataset.source === state.playing.source &&
        div.dataset.stream === state.playing.stream;
      if (!mine || t === undefined) {
        marker.setAttribute("visibility", "hidden");
        continue;
      }
      const from = Number(svg.dataset.from);
      const to = Number(svg.dataset.to);
      const width = Number(svg.dataset.width);
      const px =
        LEFT + ((Math.min(Math.max(t, from), to) - from) / Math.max(1, to - from)) * (width - LEFT - 10);
      marker.setAttribute("x1", String(px));
      marker.setAttribute("x2", String(px));
      marker.setAttribute("visibility", "visible");
    }
  }

  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token-input").value.trim();
    if (t) location.search = `?token=${encodeURIComponent(t)}`;
  });
  $("delay-play").addEventListener("click", playDelayed);
  $("delay-stream").addEventListener("change", () => {
    delete $("delay").dataset.touched;
    suggestDelay();
  });
  $("delay").addEventListener("input", () => {
    $("delay").dataset.touched = "1";
  });
  video.addEventListener("timeupdate", updateMarker);
  refresh().then(() => setInterval(() => refresh().then(updateMarker), REFRESH_MS));
})();
