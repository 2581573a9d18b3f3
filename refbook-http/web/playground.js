// Refbook playground: sign in, open a book by ISBN, pick a persona, ask and watch the
// answer stream (reasoning dimmed), stop it, reload mid-answer and resume, browse past
// conversations. Plain JavaScript against the same HTTP API a mini-program uses.
"use strict";

const $ = (id) => document.getElementById(id);
const store = {
  get token() { return localStorage.getItem("refbook.token"); },
  get refresh() { return localStorage.getItem("refbook.refresh"); },
  get conversation() { return Number(localStorage.getItem("refbook.conversation")) || null; },
  signIn(payload) {
    localStorage.setItem("refbook.token", payload.token);
    localStorage.setItem("refbook.refresh", payload.refresh_token);
  },
  setConversation(id) {
    if (id) localStorage.setItem("refbook.conversation", String(id));
    else localStorage.removeItem("refbook.conversation");
  },
  clear() {
    ["refbook.token", "refbook.refresh", "refbook.conversation"].forEach((k) => localStorage.removeItem(k));
  },
};

const state = { book: null, conversation: null, streaming: null, personas: [] };

// ---- HTTP ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code ? body.code : "HTTP_" + status;
  }
}

async function refreshToken() {
  const refresh = store.refresh;
  if (!refresh) return false;
  const res = await fetch("/api/auth/refresh/", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: refresh }),
  });
  if (!res.ok) return false;
  store.signIn(await res.json());
  return true;
}

// One API call; JSON in and out. `raw: true` hands back the Response (for streams).
async function api(method, path, body, { raw = false, signal, retried = false, headers = {}, file } = {}) {
  const init = { method, headers: { ...headers }, signal };
  if (store.token) init.headers.authorization = "Bearer " + store.token;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (file !== undefined) init.body = file;
  const res = await fetch(path, init);
  if (res.status === 401 && store.token && !retried && await refreshToken()) {
    return api(method, path, body, { raw, signal, retried: true, headers, file });
  }
  if (!res.ok) {
    let err = null;
    try { err = await res.json(); } catch (_) { /* not JSON */ }
    if (res.status === 401 && store.token) signOut();
    throw new ApiError(res.status, err);
  }
  return raw ? res : res.json();
}

// Reads an SSE response, calling `onEvent(id, data)` for each `data:` line (JSON parsed,
// or the string "[DONE]").
async function readSse(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
      if (line.startsWith("id:")) id = Number(line.slice(3).trim());
      else if (line.startsWith("data:")) {
        const text = line.slice(5).trim();
        onEvent(id, text === "[DONE]" ? text : JSON.parse(text));
      }
    }
  }
}

// ---- View helpers ----------------------------------------------------------

function showError(err) {
  const el = $("error");
  if (!err) { el.hidden = true; el.textContent = ""; return; }
  el.textContent = err.code ? `${err.message} (${err.code})` : String(err.message || err);
  el.hidden = false;
}

function setStatus(text) { $("status").textContent = text || ""; }

function messageElement(message) {
  const el = document.createElement("div");
  el.className = "message " + message.role;
  el.dataset.messageId = message.id || "";
  if (message.role === "assistant") {
    const reasoning = document.createElement("div");
    reasoning.className = "reasoning";
    reasoning.dataset.testid = "reasoning";
    reasoning.textContent = message.reasoning || "";
    const content = document.createElement("div");
    content.className = "content";
    content.textContent = message.content || "";
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = describeEnd(message.status, message.finish_reason);
    const sources = document.createElement("div");
    sources.className = "sources";
    sources.dataset.testid = "sources";
    el.append(reasoning, content, sources, meta);
    renderSources(el, message.sources || [], message.citations || []);
  } else {
    el.textContent = message.content;
  }
  $("messages").append(el);
  el.scrollIntoView({ block: "end" });
  return el;
}

// The passages of the book's text a reply was given, as numbered chips under it; a chip
// opens its passage. Cited ones (the answer's [n]) are marked.
function renderSources(el, sources, citations) {
  const box = el.querySelector(".sources");
  if (!box) return;
  box.replaceChildren();
  for (const source of sources) {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip" + (citations.includes(source.n) ? " cited" : "");
    chip.dataset.testid = "source-chip";
    chip.textContent = `[${source.n}] ${source.section.title || "…"}`;
    const quote = document.createElement("blockquote");
    quote.className = "quote";
    quote.dataset.testid = "source-quote";
    quote.hidden = true;
    quote.textContent = source.quote;
    chip.addEventListener("click", () => { quote.hidden = !quote.hidden; });
    box.append(chip, quote);
  }
}

function markCited(el, citations) {
  el.querySelectorAll('[data-testid="source-chip"]').forEach((chip) => {
    const n = Number((chip.textContent.match(/^\[(\d+)\]/) || [])[1]);
    chip.classList.toggle("cited", citations.includes(n));
  });
}

// Marks the content element of `el` as the current answer (one at a time).
function markCurrentAnswer(el) {
  document.querySelectorAll('[data-testid="answer"]').forEach((n) => n.removeAttribute("data-testid"));
  el.querySelector(".content").setAttribute("data-testid", "answer");
}

function describeEnd(status, finish) {
  if (!status || status === "complete") return "";
  if (status === "generating") return "generating…";
  return finish ? `${status} (${finish})` : status;
}

function renderBook(book) {
  state.book = book;
  $("book").hidden = false;
  $("book-title").textContent = book.title;
  $("book-author").textContent = [book.author, book.publisher, book.published].filter(Boolean).join(" · ");
  $("book-intro").textContent = book.introduction || "";
  const cover = $("cover");
  if (book.cover_url) { cover.src = book.cover_url; cover.hidden = false; } else { cover.removeAttribute("src"); cover.hidden = true; }
  cover.alt = book.title;
  $("isbn").value = book.isbn;
}

function setStreaming(on) {
  $("ask").disabled = on;
  $("stop").disabled = !on;
}

// ---- Flows ----------------------------------------------------------------

// The book controls work only while signed in: a request without a token would fail.
const BOOK_CONTROLS = ["isbn", "open-book", "persona", "question", "ask", "text-file", "upload-text"];
function enableBookControls(on) {
  BOOK_CONTROLS.forEach((id) => { $(id).disabled = !on; });
}

async function signedIn() {
  const me = await api("GET", "/api/auth/me/");
  $("who").textContent = me.nickname || me.username || "";
  enableBookControls(true);
  $("auth").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
  await Promise.all([loadPersonas(), loadHistory()]);
  if (store.conversation) {
    try { await openConversation(store.conversation); } catch (err) { store.setConversation(null); showError(err); }
  }
}

function signOut() {
  if (state.streaming) state.streaming.abort();
  store.clear();
  state.conversation = null;
  enableBookControls(false);
  $("auth").hidden = false;
  $("main").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("messages").replaceChildren();
  $("history").replaceChildren();
}

async function authenticate(kind) {
  showError(null);
  const body = { username: $("username").value.trim(), password: $("password").value };
  try {
    const payload = await api("POST", kind === "register" ? "/api/auth/register/" : "/api/auth/login/", body);
    store.signIn(payload);
    $("password").value = "";
    await signedIn();
  } catch (err) { showError(err); }
}

async function loadPersonas() {
  state.personas = await api("GET", "/api/personas/");
  const select = $("persona");
  select.replaceChildren(...state.personas.map((p) => {
    const option = document.createElement("option");
    option.value = String(p.id);
    option.textContent = p.name;
    option.title = p.description;
    option.dataset.key = p.key || "";
    return option;
  }));
}

async function loadHistory() {
  const page = await api("GET", "/api/conversations/?limit=50");
  $("history").replaceChildren(...page.results.map((c) => {
    const li = document.createElement("li");
    li.dataset.conversationId = c.id;
    if (state.conversation && state.conversation.id === c.id) li.className = "current";
    li.textContent = c.title || c.book.title;
    const when = document.createElement("span");
    when.className = "when";
    when.textContent = `${c.book.title} · ${c.message_count} messages · ${new Date(c.updated_at).toLocaleString()}`;
    li.append(when);
    li.addEventListener("click", () => openConversation(c.id).catch(showError));
    return li;
  }));
}

async function openBook(isbn) {
  if (!store.token) return;
  showError(null);
  const book = await api("GET", "/api/books/" + encodeURIComponent(isbn.trim()) + "/");
  // A new book starts a new conversation at the first question.
  if (!state.book || state.book.isbn !== book.isbn) {
    state.conversation = null;
    store.setConversation(null);
    $("messages").replaceChildren();
  }
  renderBook(book);
  loadGuide(book.isbn);
}

// ---- The book's guide -----------------------------------------------------

/** Shows the book's guide (hidden when the book has no text); polls while it is written. */
async function loadGuide(isbn) {
  let guide;
  try {
    guide = await api("GET", `/api/books/${isbn}/guide/`);
  } catch (_) {
    $("guide").hidden = true; // no text, so no guide
    return;
  }
  if (!state.book || state.book.isbn !== isbn) return;
  renderGuide(guide);
  if (guide.status === "building") setTimeout(() => loadGuide(isbn), 2000);
}

function renderGuide(guide) {
  const states = {
    building: `being written: ${guide.done}/${guide.total} sections`,
    ready: `${guide.sections.length} of ${guide.total} sections`,
    failed: `incomplete: ${guide.error || "the model failed"}`,
    off: "not built on this server",
  };
  $("guide-status").textContent = "— " + (states[guide.status] || guide.status);
  const body = $("guide-body");
  body.replaceChildren();
  if (guide.book) {
    const p = document.createElement("p");
    p.dataset.testid = "guide-book";
    p.textContent = guide.book.summary;
    body.append(p);
  }
  for (const section of guide.sections) {
    const h = document.createElement("h3");
    h.textContent = section.title || `#${section.index}`;
    const p = document.createElement("p");
    p.dataset.testid = "guide-section";
    p.textContent = section.summary;
    body.append(h, p);
  }
  $("guide").hidden = false;
}

async function openConversation(id) {
  if (state.streaming) state.streaming.abort();
  showError(null);
  const detail = await api("GET", `/api/conversations/${id}/`);
  state.conversation = detail;
  store.setConversation(detail.id);
  renderBook(await api("GET", `/api/books/${detail.isbn}/`));
  if (detail.persona_id) $("persona").value = String(detail.persona_id);
  $("messages").replaceChildren();
  let resume = null;
  for (const message of detail.messages) {
    const el = messageElement(message);
    if (message.role === "assistant") markCurrentAnswer(el);
    if (message.status === "generating") resume = el;
  }
  document.querySelectorAll("#history li").forEach((li) => li.classList.toggle("current", Number(li.dataset.conversationId) === detail.id));
  if (resume) {
    // Reloaded mid-answer: follow the reply from its start.
    resume.querySelector(".content").textContent = "";
    resume.querySelector(".reasoning").textContent = "";
    await follow(resume, () => api("GET", `/api/conversations/${detail.id}/stream/?cursor=0`, undefined, {
      raw: true, signal: state.streaming.signal, headers: { accept: "text/event-stream" },
    }));
  }
}

async function ensureConversation() {
  const personaId = Number($("persona").value) || null;
  if (state.conversation && state.conversation.isbn === state.book.isbn) {
    if (personaId && state.conversation.persona_id !== personaId) {
      state.conversation = await api("PATCH", `/api/conversations/${state.conversation.id}/`, { persona_id: personaId });
    }
    return state.conversation;
  }
  const body = { isbn: state.book.isbn };
  if (personaId) body.persona_id = personaId;
  state.conversation = await api("POST", "/api/conversations/", body);
  store.setConversation(state.conversation.id);
  return state.conversation;
}

async function ask() {
  if (!store.token) return;
  showError(null);
  const question = $("question").value.trim();
  if (!question) return;
  if (!state.book) { showError({ message: "Open a book first." }); return; }
  try {
    const conversation = await ensureConversation();
    messageElement({ role: "user", content: question });
    $("question").value = "";
    const el = messageElement({ role: "assistant", content: "", status: "generating" });
    markCurrentAnswer(el);
    await follow(el, () => api("POST", `/api/conversations/${conversation.id}/messages/`, { content: question }, {
      raw: true, signal: state.streaming.signal, headers: { accept: "text/event-stream" },
    }));
  } catch (err) { showError(err); }
}

// Streams a reply into `el`; `open` starts the request (given state.streaming's signal).
async function follow(el, open) {
  state.streaming = new AbortController();
  setStreaming(true);
  setStatus("generating…");
  const content = el.querySelector(".content");
  const reasoning = el.querySelector(".reasoning");
  const meta = el.querySelector(".meta");
  try {
    const res = await open();
    await readSse(res, (_id, data) => {
      if (data === "[DONE]") return;
      if (data.error) { showError(data.error); return; }
      if (data.message_id) el.dataset.messageId = data.message_id;
      if (data.sources) renderSources(el, data.sources, []);
      if (data.citations) markCited(el, data.citations);
      const choice = data.choices && data.choices[0];
      if (!choice) return;
      if (choice.delta.reasoning_content) reasoning.textContent += choice.delta.reasoning_content;
      if (choice.delta.content) content.textContent += choice.delta.content;
      if (choice.finish_reason) meta.textContent = describeEnd(data.status, choice.finish_reason);
    });
    setStatus("");
  } catch (err) {
    if (err.name === "AbortError") return;
    meta.textContent = "";
    setStatus("");
    showError(err);
  } finally {
    setStreaming(false);
    state.streaming = null;
    loadHistory().catch(() => {});
  }
}

async function stop() {
  if (!state.conversation) return;
  try {
    await api("POST", `/api/conversations/${state.conversation.id}/stop/`);
  } catch (err) {
    if (err.status !== 404) showError(err);
  }
}

// Uploads the reader's own copy of the open book's text (theirs only; it grounds their
// answers).
async function uploadText() {
  const file = $("text-file").files[0];
  if (!file || !state.book) return;
  showError(null);
  const name = file.name.toLowerCase();
  const type = name.endsWith(".epub") ? "application/epub+zip" : name.endsWith(".md") ? "text/markdown" : "text/plain";
  setStatus("uploading the text…");
  try {
    const isbn = state.book.isbn;
    let text = await api("PUT", `/api/books/${isbn}/text/`, undefined, {
      headers: { "content-type": type }, file,
    });
    // Indexed in the background: the previous text answers until this one is ready.
    while (text.status === "indexing") {
      $("text-status").textContent = `Indexing your copy: ${Math.floor(text.progress * 100)}%`;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (!state.book || state.book.isbn !== isbn) return;
      text = await api("GET", `/api/books/${isbn}/text/`);
    }
    $("text-status").textContent = text.status === "failed"
      ? `Your copy could not be indexed: ${text.error}`
      : `Your copy: ${text.sections.length} sections, ${text.chunks} passages`;
    setStatus("");
    loadGuide(isbn);
  } catch (err) { setStatus(""); showError(err); }
}

// ---- Wiring ---------------------------------------------------------------

$("auth-form").addEventListener("submit", (e) => { e.preventDefault(); authenticate("login"); });
$("register").addEventListener("click", () => authenticate("register"));
$("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/auth/logout/", { refresh_token: store.refresh }); } catch (_) { /* signed out anyway */ }
  signOut();
});
$("book-form").addEventListener("submit", (e) => { e.preventDefault(); openBook($("isbn").value).catch(showError); });
$("ask-form").addEventListener("submit", (e) => { e.preventDefault(); ask(); });
$("question").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); ask(); }
});
$("stop").addEventListener("click", stop);
$("upload-text").addEventListener("click", uploadText);

if (store.token) signedIn().catch((err) => { showError(err); });
