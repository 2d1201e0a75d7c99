/* liveloop viewer page: one WebSocket, frames every 100 ms, a small DOM. */
(() => {
  "use strict";
  const boot = JSON.parse(document.getElementById("ll-boot").textContent);
  const T = boot.texts;
  const show = boot.show;
  const $ = (id) => document.getElementById(id);
  const MAX_COMMENTS = 40;
  const decoder = new TextDecoder();
  const state = { token: null, alias: null, ws: null, lastQ: 0, retry: 0, pendingLikes: 0, likes: 0, cards: new Map(),
    startedAt: show.started_at ? Date.parse(show.started_at) : null, status: show.status, closed: false };

  const fmt = (text, vars) => text.replace(/\{(\w)\}/g, (_, k) => (vars && k in vars ? vars[k] : ""));
  const el = (tag, props, children) => {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children || []) node.append(child);
    return node;
  };
  let toastTimer = null;
  const toast = (text) => {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 2500);
  };

  // --- static parts ---------------------------------------------------------------------------------------
  $("title").textContent = show.title;
  $("host").textContent = show.host;
  $("text").placeholder = T.say;
  $("send").textContent = T.send;
  $("share-title").textContent = T.share;
  $("share-close").textContent = T.close;
  $("test-card-text").textContent = T.test_card;
  const renderStatus = () => {
    const badge = $("status");
    badge.className = "badge " + state.status;
    badge.textContent = state.status === "live" ? T.live : state.status === "ended" ? T.ended : T.scheduled;
  };
  renderStatus();

  // --- comments ---------------------------------------------------------------------------------------------
  const addComment = (m) => {
    const list = $("comments");
    const item = el("li", { className: m.k === "hc" ? "host" : "" }, [el("b", { textContent: m.u })]);
    const text = el("span");
    text.innerHTML = m.x; // escaped by the server (&lt; &gt; &amp; &quot; &#x27;)
    item.append(text);
    list.append(item);
    while (list.children.length > MAX_COMMENTS) list.firstElementChild.remove();
  };
  const addMore = (n) => {
    if (n <= 0) return;
    const list = $("comments");
    list.append(el("li", { className: "more", textContent: fmt(T.more_comments, { n }) }));
    while (list.children.length > MAX_COMMENTS) list.firstElementChild.remove();
  };

  // --- cards ------------------------------------------------------------------------------------------------
  const titles = { keyword_lottery: T.lottery, like_sprint: T.sprint, danmaku_challenge: T.challenge, quiz: T.quiz,
    poll: T.poll, team_pk: T.pk, flash_offer: T.flash, pin: T.pinned };

  const send = (message) => {
    if (state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify(message));
  };

  const renderCard = (card) => {
    let node = document.querySelector(`[data-card="${CSS.escape(card.card)}"]`);
    if (!node) {
      node = el("div", { className: "card" });
      node.dataset.card = card.card;
      node.dataset.kind = card.k;
      $("cards").prepend(node);
    }
    const c = card.config || {};
    const body = [el("h3", { textContent: titles[card.k] || card.title })];
    if (card.k === "pin") {
      for (const p of card.products || []) {
        body.push(el("p", {}, [el("strong", { textContent: p.title }), " ", money(p.price_minor, p.currency)]));
      }
    } else {
      body.push(el("p", { textContent: card.title }));
    }
    const result = card.result;
    if (card.k === "keyword_lottery") {
      body.push(el("p", { textContent: fmt(T.keyword, { k: c.keyword }) }));
      if (result) {
        const names = (result.winners || []).map((w) => w.name || w.a);
        body.push(el("p", { className: "done winners", textContent: `${T.winners}: ${names.length ? names.join(", ") : T.no_winner}` }));
      }
    } else if (card.k === "quiz" || card.k === "poll") {
      body.push(el("p", { textContent: c.question }));
      const votes = result ? result.votes : card.votes || [];
      (c.options || []).forEach((option, i) => {
        const button = el("button", { type: "button", textContent: option + (votes[i] !== undefined ? ` · ${votes[i]} ${T.votes}` : "") });
        button.dataset.option = String(i);
        if (card.chosen === i) button.classList.add("chosen");
        if (result && result.answer === i) button.classList.add("right");
        button.disabled = Boolean(result) || card.chosen !== undefined;
        button.onclick = () => { card.chosen = i; send({ t: card.k === "quiz" ? "a" : "v", i: card.card, o: i }); renderCard(card); };
        body.push(button);
      });
      if (result && card.k === "poll") {
        const tied = result.tied || [];
        const verdict = result.winner || (tied.length ? fmt(T.tie, { o: tied.join(" · ") }) : T.no_votes);
        body.push(el("p", { className: "done", textContent: verdict }));
      }
    } else if (card.k === "like_sprint" || card.k === "danmaku_challenge") {
      const target = c.target || 1;
      const progress = card.k === "like_sprint" ? Math.max(state.likes - (card.baseLikes || 0), 0) : card.progress || 0;
      if (card.k === "danmaku_challenge") body.push(el("p", { textContent: fmt(T.keyword, { k: c.keyword }) }));
      body.push(el("p", { textContent: `${Math.min(progress, target)} / ${target}` }));
      const bar = el("div", { className: "bar-fill" });
      bar.style.width = `${Math.min(100, (100 * progress) / target)}%`;
      body.push(bar);
      if (result) body.push(el("p", { className: "done", textContent: result.reached ? T.unlocked : T.missed }));
    } else if (card.k === "flash_offer") {
      const left = card.left !== undefined ? card.left : c.quantity - (card.progress || 0);
      body.push(el("p", { textContent: left > 0 ? fmt(T.left, { n: left }) : T.sold_out }));
      const button = el("button", { type: "button", textContent: T.claim, disabled: left <= 0 || Boolean(result) });
      button.onclick = () => send({ t: "claim", i: card.card });
      body.push(button);
    } else if (card.k === "team_pk") {
      const scores = (result && result.scores) || card.scores || {};
      for (const team of c.teams || []) {
        const button = el("button", { type: "button", textContent: `${team}${scores[team] !== undefined ? " · " + scores[team] : ""}` });
        button.disabled = Boolean(result) || Boolean(card.team);
        if (card.team === team) button.classList.add("chosen");
        button.onclick = () => send({ t: "team", i: card.card, team });
        body.push(button);
      }
      if (card.team) body.push(el("p", { textContent: fmt(T.your_team, { t: card.team }) }));
      if (result && result.winner) body.push(el("p", { className: "done", textContent: `${T.winners}: ${result.winner}` }));
    }
    if (card.closes_at && !result) {
      const clock = el("p", { className: "countdown-line" });
      clock.dataset.until = String(Date.parse(card.closes_at));
      body.push(clock);
    }
    node.replaceChildren(...body);
    tickCountdowns();
    if (result) setTimeout(() => node.remove(), 20000);
  };

  // Each open card counts down to its close ("first N buyers", quiz answers, lottery entries…).
  const tickCountdowns = () => {
    for (const line of document.querySelectorAll(".countdown-line")) {
      const left = Math.max(0, Math.round((Number(line.dataset.until) - Date.now()) / 1000));
      line.textContent = `⏱ ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    }
  };
  setInterval(tickCountdowns, 1000);

  const money = (minor, currency) => {
    try {
      const digits = new Intl.NumberFormat(boot.lang, { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
      return new Intl.NumberFormat(boot.lang, { style: "currency", currency }).format(minor / 10 ** digits);
    } catch (e) {
      return `${minor} ${currency}`;
    }
  };

  const cardKinds = new Set(Object.keys(titles));

  // --- messages ---------------------------------------------------------------------------------------------
  const onMessage = (m) => {
    if (m.q && m.q <= state.lastQ) return; // seen already (a resume can overlap a frame)
    if (m.q) state.lastQ = m.q;
    if (m.k === "c" || m.k === "hc") return addComment(m);
    if (cardKinds.has(m.k)) {
      const existing = state.cards.get(m.card) || {};
      const card = Object.assign(existing, m);
      if (m.k === "like_sprint" && existing.baseLikes === undefined) card.baseLikes = state.likes;
      state.cards.set(m.card, card);
      return renderCard(card);
    }
    const card = state.cards.get(m.card);
    if (m.k === "progress" && card) { card.progress = m.progress; return renderCard(card); }
    if (m.k === "vote" && card) { card.votes = card.votes || []; card.votes[m.o] = (card.votes[m.o] || 0) + 1; return renderCard(card); }
    if (m.k === "flash_claim" && card) { card.left = m.left; return renderCard(card); }
    if (m.k === "pk_scores" && card) { card.scores = m.scores; return renderCard(card); }
    if (m.k === "show") {
      if (m.status) { state.status = m.status; renderStatus(); }
      if (m.started_at) state.startedAt = Date.parse(m.started_at);
      if (m.status === "ended") ended(m.replay_url);
      return;
    }
    if (m.k === "cue") return cue(m);
    if (m.k === "draw") return toast(`${T.winners}: ${(m.winners || []).length}`);
    if (m.k === "rhythm") { show.rhythm = m.rhythm; return; }
    if (m.k === "video") { show.video = { provider: m.provider, hls_url: m.hls_url }; return startVideo(show.video); }
  };

  const onFrame = (data) => {
    if (data.t === "hello") {
      state.alias = data.you.a; // what the room shows of this viewer (its key stays with the server)
      setCounts(data.lk, data.v);
      for (const raw of data.cards || []) onMessage(Object.assign({}, raw, { q: 0 }));
      for (const [id, votes] of Object.entries(data.votes || {})) {
        const card = state.cards.get(id);
        if (card && !card.result) { card.votes = votes.slice(); renderCard(card); }
      }
      if (data.q > state.lastQ && !state.lastQ) state.lastQ = data.q;
      return;
    }
    if (data.t === "err") return toast(data.message);
    if (data.t === "ok") {
      const card = state.cards.get(data.card);
      if (data.entered) toast(T.entered);
      if (card && data.team) { card.team = data.team; renderCard(card); }
      if (data.cohost) toast(T.cohost_sent);
      return;
    }
    for (const m of data.m || []) onMessage(m);
    if (data.t === "f") {
      setCounts(data.lk, data.v);
      const shown = (data.m || []).filter((m) => m.k === "c").length;
      addMore(data.dc - shown);
    }
  };

  const setCounts = (likes, viewers) => {
    if (typeof likes === "number") state.likes = likes;
    if (typeof viewers === "number") $("viewers").textContent = `${viewers.toLocaleString(boot.lang)} ${T.viewers}`;
    $("likes").textContent = `${(state.likes + state.pendingLikes).toLocaleString(boot.lang)} ${T.likes}`;
    for (const card of state.cards.values()) if (card.k === "like_sprint" && !card.result) renderCard(card);
  };

  // --- rhythm -------------------------------------------------------------------------------------------------
  const cue = (m) => {
    const banner = $("banner");
    banner.textContent = m.phase === "announce" ? `${m.title} — ${T.coming} ${Math.round(m.in_seconds / 60)}′` : `${T.now}: ${m.title}`;
    banner.hidden = false;
    setTimeout(() => { banner.hidden = true; }, 8000);
  };
  setInterval(() => {
    const box = $("countdown");
    if (!state.startedAt || state.status !== "live") { box.hidden = true; return; }
    const now = Date.now();
    const next = (show.rhythm || []).map((p) => ({ p, at: state.startedAt + p.at_minute * 60000 })).find((x) => x.at > now);
    if (!next) { box.hidden = true; return; }
    const left = Math.round((next.at - now) / 1000);
    box.textContent = `${next.p.title} · ${T.coming} ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    box.hidden = false;
  }, 1000);

  const ended = (replay) => {
    state.closed = true;
    const card = el("div", { className: "card" }, [el("h3", { textContent: T.ended })]);
    if (replay) card.append(el("a", { href: replay, textContent: T.replay }));
    $("cards").prepend(card);
  };

  // --- video -------------------------------------------------------------------------------------------------
  // HLS plays natively where the browser can (Safari, Android) and through hls.js elsewhere; LiveKit rooms play
  // through livekit-client with a token from our API. Both players load only when a show needs them; without a
  // provider (or a player) the test card stays.
  const VENDOR = "/static/live/vendor/";
  const video = { hls: null, room: null, source: null };
  const loadScript = (name, global) => window[global] ? Promise.resolve() : new Promise((resolve, reject) => {
    const script = el("script", { src: VENDOR + name, async: true });
    script.onload = () => (window[global] ? resolve() : reject(new Error(`${name} did not load`)));
    script.onerror = () => reject(new Error(`${name} is not installed (run: liveloop assets)`));
    document.head.append(script);
  });
  const testCard = () => {
    $("video").replaceChildren(el("div", { className: "test-card", id: "test-card" }, [el("span", { textContent: T.test_card })]));
  };
  const stopVideo = () => {
    if (video.hls) { video.hls.destroy(); video.hls = null; }
    if (video.room) { video.room.disconnect(); video.room = null; }
  };
  const playHls = async (url) => {
    const player = el("video", { autoplay: true, muted: true, playsInline: true, controls: true });
    player.dataset.source = "hls";
    $("video").replaceChildren(player);
    if (player.canPlayType("application/vnd.apple.mpegurl")) { player.src = url; return; }
    await loadScript("hls.light.min.js", "Hls");
    if (!window.Hls.isSupported()) throw new Error("this browser has no Media Source Extensions");
    video.hls = new window.Hls({ lowLatencyMode: true, backBufferLength: 30 });
    video.hls.loadSource(url);
    video.hls.attachMedia(player);
  };
  const playLivekit = async () => {
    await loadScript("livekit-client.umd.js", "LivekitClient");
    if (!state.token) await getToken();
    const response = await fetch(`/v1/public/shows/${encodeURIComponent(show.id)}/video-token`, {
      method: "POST", headers: { authorization: `Bearer ${state.token}` },
    });
    if (!response.ok) throw new Error(`video token refused (${response.status})`);
    const grant = await response.json();
    const LK = window.LivekitClient;
    const room = new LK.Room({ adaptiveStream: true, dynacast: true });
    video.room = room;
    room.on(LK.RoomEvent.TrackSubscribed, (track) => {
      const media = track.attach();
      if (track.kind === "video") {
        media.playsInline = true;
        media.dataset.source = "livekit";
        $("video").replaceChildren(media);
      } else {
        $("video").append(media);
      }
    });
    room.on(LK.RoomEvent.Disconnected, () => { if (video.room === room) testCard(); });
    await room.connect(grant.url, grant.token, { autoSubscribe: true });
  };
  const startVideo = (source) => {
    const key = JSON.stringify(source || {});
    if (key === video.source) return;
    video.source = key;
    stopVideo();
    testCard();
    const play = source && source.provider === "hls" && source.hls_url ? () => playHls(source.hls_url)
      : source && source.provider === "livekit" ? playLivekit : null;
    if (!play) return;
    play().catch((error) => {
      console.warn("video:", error.message);
      $("video").dataset.error = error.message;
      stopVideo();
      testCard();
    });
  };

  // --- connection -------------------------------------------------------------------------------------------
  const fragmentToken = new URLSearchParams(location.hash.slice(1)).get("token");
  const getToken = async () => {
    if (fragmentToken && !state.token) { state.token = fragmentToken; return; }
    const name = localStorage.getItem("ll-name");
    const response = await fetch(`/v1/public/shows/${encodeURIComponent(show.id)}/join`, {
      method: "POST", headers: { "content-type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify(name ? { name } : {}),
    });
    if (!response.ok) throw new Error("join failed");
    state.token = (await response.json()).token;
  };

  const connect = async () => {
    if (!state.token) await getToken();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let url = `${scheme}://${location.host}/v1/live/${encodeURIComponent(show.id)}/ws`;
    if (state.lastQ) url += `?since=${state.lastQ}`;
    // The token travels as the subprotocol, never in the URL (servers and proxies log URLs).
    const ws = new WebSocket(url, ["liveloop.v1", state.token]);
    ws.binaryType = "arraybuffer";
    state.ws = ws;
    ws.onopen = () => { state.retry = 0; };
    ws.onmessage = (event) => onFrame(JSON.parse(typeof event.data === "string" ? event.data : decoder.decode(event.data)));
    ws.onclose = (event) => {
      state.ws = null;
      if (event.code === 4410) { state.status = "ended"; renderStatus(); if (!state.closed) ended(show.replay_url); return; }
      if (event.code === 4403) { toast(T.removed); $("text").disabled = $("send").disabled = true; return; }
      if (event.code === 4401) state.token = fragmentToken && state.retry < 1 ? fragmentToken : null;
      if (state.closed) return;
      toast(T.reconnecting);
      const delay = Math.min(1000 * 2 ** state.retry, 15000) * (0.5 + Math.random() / 2);
      state.retry += 1;
      setTimeout(() => connect().catch(() => ws.onclose({ code: 1006 })), delay);
    };
  };

  // --- inputs -----------------------------------------------------------------------------------------------
  $("say").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    send({ t: "c", x: text });
    $("text").value = "";
  });
  $("like-btn").addEventListener("click", () => {
    state.pendingLikes += 1;
    setCounts();
    const b = $("like-btn");
    b.classList.remove("pop"); void b.offsetWidth; b.classList.add("pop");
  });
  setInterval(() => {
    if (!state.pendingLikes) return;
    const n = Math.min(state.pendingLikes, 50);
    send({ t: "l", n });
    state.pendingLikes -= n;
  }, 250);
  setInterval(() => send({ t: "hb" }), 15000);

  // Brands keep their own names in every language; what is not a brand is the viewer's language.
  const BRANDS = { whatsapp: "WhatsApp", facebook: "Facebook", instagram: "Instagram", tiktok: "TikTok", x: "X",
    telegram: "Telegram", line: "LINE" };
  const channelName = (channel) => BRANDS[channel] || (channel === "copy" ? T.copy_link : channel === "email" ? T.email : channel);

  $("share-btn").addEventListener("click", async () => {
    const list = $("share-links");
    list.replaceChildren();
    let body = { room_url: location.href.split("#")[0], links: [] };
    try {
      const r = await fetch(`/v1/public/shows/${encodeURIComponent(show.id)}/share?lang=${boot.lang}`, { headers: { authorization: `Bearer ${state.token}` } });
      if (r.ok) body = await r.json();
    } catch (e) { /* offline: the room link still works */ }
    for (const link of body.links) {
      if (link.channel === "qr") continue;
      const target = link.share_url || link.url;
      const a = el("a", { href: target, target: "_blank", rel: "noopener", textContent: channelName(link.channel) });
      if (link.channel === "copy") a.onclick = (e) => { e.preventDefault(); navigator.clipboard.writeText(link.url); toast(T.copied); send({ t: "s", ch: "copy" }); };
      else a.onclick = () => send({ t: "s", ch: link.channel });
      list.append(el("li", {}, [a]));
    }
    if (!body.links.length) {
      const b = el("button", { type: "button", textContent: T.copy_link });
      b.onclick = () => { navigator.clipboard.writeText(body.room_url); toast(T.copied); send({ t: "s", ch: "copy" }); };
      list.append(el("li", {}, [b]));
    }
    $("share-sheet").showModal();
  });
  $("share-close").addEventListener("click", () => $("share-sheet").close());

  if (show.pinned && show.pinned.length) onMessage({ k: "pin", card: "pinned", products: show.pinned, q: 0 });

  window.liveloop = { state, send };
  connect().catch(() => toast(T.reconnecting)).finally(() => startVideo(show.video));
})();
