/* liveloop host console: the show's controls over the REST API, its comments over a host socket. */
(() => {
  "use strict";
  const boot = JSON.parse(document.getElementById("ll-boot").textContent);
  const showId = boot.show_id;
  const $ = (id) => document.getElementById(id);
  const el = (tag, props, children) => {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children || []) node.append(child);
    return node;
  };
  let key = sessionStorage.getItem("ll-key") || "";
  let show = null;
  let ws = null;
  let toastTimer = null;
  const toast = (text) => {
    $("toast").textContent = text;
    $("toast").hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { $("toast").hidden = true; }, 3000);
  };

  const api = async (method, path, body) => {
    const response = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "idempotency-key": crypto.randomUUID() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (data.error && data.error.message) || `HTTP ${response.status}`;
      toast(message);
      throw new Error(message);
    }
    return data;
  };

  // Every item of a paginated list ({items, next_cursor}), following next_cursor (up to `pages` pages).
  const allPages = async (path, pages = 10) => {
    const items = [];
    let cursor = null;
    for (let i = 0; i < pages; i++) {
      const sep = path.includes("?") ? "&" : "?";
      const page = await api("GET", `${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      items.push(...page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    return items;
  };

  const templates = {
    poll: { question: "Which colour should we show next?", options: ["Rose", "Sand", "Night"], window_seconds: 60 },
    quiz: { question: "Where is this silk from?", options: ["Thailand", "Peru"], answer: 0, points: 50, window_seconds: 30 },
    keyword_lottery: { keyword: "666", winners: 3, prize: { type: "points", amount: 200 }, window_seconds: 120 },
    like_sprint: { target: 10000, reward: { type: "points", amount: 20 }, window_seconds: 300 },
    danmaku_challenge: { keyword: "gogo", target: 200, reward: { type: "points", amount: 30 }, window_seconds: 300 },
    flash_offer: { sku: "SKU-1", quantity: 50, per_buyer: 1, bonus: { type: "points", amount: 100 }, window_seconds: 120 },
    team_pk: { teams: ["Red", "Blue"], metric: "interactions", reward: { type: "points", amount: 50 }, window_seconds: 600 },
  };
  const showTemplate = () => { $("launch-body").value = JSON.stringify(templates[$("kind").value], null, 2); };
  $("kind").addEventListener("change", showTemplate);
  showTemplate();

  const render = () => {
    $("title").textContent = `${show.title} · ${show.host_name}`;
    $("status").textContent = show.status;
    $("status").className = `badge ${show.status}`;
    $("start").disabled = show.status !== "scheduled";
    $("end").disabled = show.status !== "live";
    $("viewer-link").href = `/live/${showId}`;
    $("pinned").replaceChildren(
      ...show.pinned.map((p, i) => {
        const remove = el("button", { className: "secondary", textContent: "Unpin" });
        remove.onclick = async () => {
          show = await api("PATCH", `/v1/shows/${showId}`, { pinned: show.pinned.filter((_, j) => j !== i) });
          render();
        };
        return el("li", {}, [el("span", { textContent: `${p.title} (${p.sku}) ${p.price_minor} ${p.currency}` }), remove]);
      }),
    );
  };

  const refreshInteractions = async () => {
    const page = await api("GET", `/v1/shows/${showId}/interactions?limit=20`); // the latest first
    $("interactions").replaceChildren(
      ...page.items.map((ia) => {
        const item = el("li", {}, [
          el("span", { textContent: `${ia.title} · ${ia.kind} · ${ia.status}${ia.status === "settled" ? " · " + summary(ia.result) : ` · ${ia.progress}`}` }),
        ]);
        if (ia.status === "open") {
          const settle = el("button", { textContent: "Close now" });
          settle.onclick = async () => { await api("POST", `/v1/interactions/${ia.id}/settle`); refreshInteractions(); };
          item.append(settle);
        }
        return item;
      }),
    );
  };
  const summary = (r) => {
    if (!r) return "";
    if (r.winners) return `${r.winners.length} winner(s)`;
    if (r.votes) return `votes ${r.votes.join("/")}`;
    if ("reached" in r) return r.reached ? `reached, ${r.rewarded} rewarded` : "not reached";
    if (r.scores) return `winner ${r.winner || "none"}`;
    if ("claimed" in r) return `${r.claimed}/${r.quantity} claimed`;
    return "";
  };

  const refreshCounts = async () => {
    const stats = await api("GET", `/v1/shows/${showId}/live-stats`);
    const c = stats.counters || {};
    $("counts").textContent = `${stats.viewers_now} watching · ${stats.unique_viewers} unique · ${stats.effective_viewers} effective · ${c.likes || 0} likes · ${c.comments || 0} comments`;
  };

  const refreshCohosts = async () => {
    const queue = await allPages(`/v1/shows/${showId}/cohosts`);
    $("cohosts").replaceChildren(
      ...queue.map((r) => {
        const item = el("li", {}, [el("span", { textContent: `${r.name} · ${r.status}` })]);
        for (const decision of ["approve", "decline"]) {
          if (r.status === "waiting" || (r.status === "approved" && decision === "decline")) {
            const b = el("button", { className: decision === "approve" ? "" : "secondary", textContent: decision });
            b.onclick = async () => { await api("POST", `/v1/shows/${showId}/cohosts/${r.id}/${decision}`); refreshCohosts(); };
            item.append(b);
          }
        }
        return item;
      }),
    );
  };

  const addComment = (m) => {
    const text = el("span");
    text.innerHTML = m.x; // escaped by the server
    const item = el("li", {}, [el("span", {}, [el("span", { className: "who", textContent: m.u }), text])]);
    if (m.k === "c" && m.a) {
      for (const kind of ["mute", "ban"]) {
        const b = el("button", { className: "secondary", textContent: kind });
        b.onclick = async () => {
          await api("POST", `/v1/shows/${showId}/restrictions`, { alias: m.a, kind }); // the server finds the viewer
          toast(`${m.u}: ${kind}`);
        };
        item.append(b);
      }
    }
    $("comments").prepend(item);
    while ($("comments").children.length > 100) $("comments").lastElementChild.remove();
  };

  const connect = async () => {
    if (show.status !== "live") return;
    const grant = await api("POST", `/v1/shows/${showId}/host-token`, {});
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${scheme}://${location.host}/v1/live/${showId}/ws`, ["liveloop.v1", grant.token]);
    ws.binaryType = "arraybuffer";
    const decoder = new TextDecoder();
    ws.onmessage = (event) => {
      const data = JSON.parse(typeof event.data === "string" ? event.data : decoder.decode(event.data));
      for (const m of data.m || []) {
        if (m.k === "c" || m.k === "hc") addComment(m);
        if (m.card && m.card.startsWith("ia_")) refreshInteractions();
        if (m.k === "cohost_queue") refreshCohosts();
      }
      if (data.t === "err") toast(data.message);
    };
    ws.onclose = (event) => { if (event.code !== 4410) setTimeout(connect, 2000); };
  };

  const open = async () => {
    show = await api("GET", `/v1/shows/${showId}`);
    sessionStorage.setItem("ll-key", key);
    $("login").hidden = true;
    $("console").hidden = false;
    render();
    await Promise.all([refreshInteractions(), refreshCounts(), refreshCohosts()]);
    setInterval(() => refreshCounts().catch(() => {}), 2000);
    connect();
  };

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    key = $("key").value.trim();
    try { await open(); } catch (e) { /* toast shown */ }
  });
  $("start").onclick = async () => { show = await api("POST", `/v1/shows/${showId}/start`); render(); connect(); };
  $("end").onclick = async () => {
    if (!confirm("End the show for everyone?")) return;
    const replay = $("replay").value.trim();
    show = await api("POST", `/v1/shows/${showId}/end`, replay ? { replay_url: replay } : {});
    render();
  };
  $("pin").addEventListener("submit", async (event) => {
    event.preventDefault();
    const product = {
      sku: $("pin-sku").value.trim(), title: $("pin-title").value.trim(),
      price_minor: Number($("pin-price").value), currency: $("pin-currency").value.trim().toUpperCase(),
    };
    show = await api("PATCH", `/v1/shows/${showId}`, { pinned: [...show.pinned, product] });
    render();
    $("pin").reset();
  });
  $("launch").addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try { body = JSON.parse($("launch-body").value); } catch (e) { toast("The settings are not valid JSON."); return; }
    await api("POST", `/v1/shows/${showId}/interactions`, { kind: $("kind").value, ...body });
    toast("Launched");
    refreshInteractions();
  });
  $("say").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("say-text").value.trim();
    if (text && ws && ws.readyState === 1) ws.send(JSON.stringify({ t: "c", x: text }));
    $("say-text").value = "";
  });

  if (key) open().catch(() => { $("login").hidden = false; });
})();
