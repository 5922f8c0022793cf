// The playground's editor: a transparent <textarea> over a highlighted <pre>
// with the same font metrics.  Colouring, squiggles, the completion popup and
// the hover tooltip are drawn here; the language services are the server's
// (passed in as `services`).  No innerHTML anywhere: every text goes in as a
// text node.
//
// Positions: the server counts 0-based lines and 0-based code points within
// the line; the textarea counts UTF-16 units from the start.  pos()/offset()
// convert between the two.

const KEYWORDS = new Set(
  ("param events sequence within feature segment or and not between in is null true false starts ends " +
    "with matches contains any all case when then else end by where now today").split(" "),
);

// One alternation, tried at each position (the grammar's tokens, simplified
// for colouring: a wrong colour is harmless, the server checks the text).
const TOKEN = new RegExp(
  [
    "(?<comment>(?:#|--)[^\\n]*)",
    '(?<string>"(?:[^"\\\\\\n]|\\\\.|"")*"?|\'(?:[^\'\\n]|\'\')*\'?)',
    "(?<quoted>`[^`\\n]*`?)",
    "(?<date>\\d{4}-\\d{2}-\\d{2}(?:T\\d{2}:\\d{2}(?::\\d{2}(?:\\.\\d{1,9})?)?(?:Z|[+-]\\d{2}:\\d{2})?)?(?![\\w]))",
    "(?<duration>\\d(?:_?\\d)*[dwmyh](?![\\w]))",
    "(?<number>(?:\\d(?:_?\\d)*)?\\.?\\d(?:_?\\d)*(?:[eE][+-]?\\d+)?)",
    "(?<param>\\$[\\p{L}_][\\p{L}\\p{N}_]*)",
    "(?<name>[\\p{L}_][\\p{L}\\p{N}_]*)",
    "(?<op>==|!=|<>|<=|>=|[=<>+\\-*/%])",
  ].join("|"),
  "gu",
);

/** The colouring class of each UTF-16 unit of `text` ("" for none). */
export function tokenClasses(text) {
  const classes = new Array(text.length).fill("");
  TOKEN.lastIndex = 0;
  let m;
  while ((m = TOKEN.exec(text)) !== null) {
    if (m[0].length === 0) {
      TOKEN.lastIndex++;
      continue;
    }
    let kind = Object.keys(m.groups).find((k) => m.groups[k] !== undefined);
    if (kind === "name") {
      const rest = text.slice(TOKEN.lastIndex);
      if (KEYWORDS.has(m[0].toLowerCase())) kind = "keyword";
      else if (/^\s*\(/.test(rest)) kind = "function";
      else if (/(?:^|[^\p{L}\p{N}_])(?:segment|feature|param)\s+$/iu.test(text.slice(Math.max(0, m.index - 24), m.index)))
        kind = "declared";
    }
    if (kind === "quoted") kind = "name";
    for (let i = m.index; i < TOKEN.lastIndex; i++) classes[i] = "tok-" + kind;
  }
  return classes;
}

/** The UTF-16 offset in `text` of a server position {line, character}. */
export function offset(text, position) {
  let start = 0;
  for (let line = 0; line < position.line; line++) {
    const next = text.indexOf("\n", start);
    if (next < 0) return text.length;
    start = next + 1;
  }
  const end = text.indexOf("\n", start) < 0 ? text.length : text.indexOf("\n", start);
  let at = start;
  for (let cp = 0; cp < position.character && at < end; cp++) {
    at += text.codePointAt(at) > 0xffff ? 2 : 1;
  }
  return Math.min(at, end);
}

/** The server position {line, character} of UTF-16 offset `at` in `text`. */
export function pos(text, at) {
  const before = text.slice(0, at);
  const line = before.split("\n").length - 1;
  const lineStart = before.lastIndexOf("\n") + 1;
  return { line, character: Array.from(before.slice(lineStart)).length };
}

const TAB = 4;

/** The visual column (tabs expanded) of code point `character` on `lineText`. */
function visualColumn(lineText, character) {
  let column = 0;
  let cp = 0;
  for (const ch of lineText) {
    if (cp++ >= character) break;
    column = ch === "\t" ? column + TAB - (column % TAB) : column + 1;
  }
  return column;
}

/** The code point at visual column `column` of `lineText`. */
function characterAt(lineText, column) {
  let visual = 0;
  let cp = 0;
  for (const ch of lineText) {
    const width = ch === "\t" ? TAB - (visual % TAB) : 1;
    if (column < visual + width) return cp;
    visual += width;
    cp++;
  }
  return cp;
}

function element(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("data-") || name.startsWith("aria-") || name === "role") node.setAttribute(name, value);
    else node[name] = value;
  }
  for (const child of children) node.append(child);
  return node;
}
export { element };

/** The lines of a diagnostic for a tooltip or the problems list. */
export function diagnosticText(d) {
  const lines = [`${d.severity}: ${d.message}`];
  if (d.hint) lines.push(d.hint);
  if (d.suggestions && d.suggestions.length && !(d.hint || "").includes("did you mean"))
    lines.push("did you mean " + d.suggestions.map((s) => `'${s}'`).join(" or ") + "?");
  return lines.join("\n");
}

export class Editor {
  /**
   * root: the element holding textarea#source and pre#highlight;
   * services: {complete(source, position) -> Promise<items>, hover(source, position) -> Promise<{markdown}|null>};
   * onChange(source): called on every edit.
   */
  constructor({ textarea, highlight, popup, tooltip, services, onChange }) {
    this.textarea = textarea;
    this.highlight = highlight;
    this.popup = popup;
    this.tooltip = tooltip;
    this.services = services;
    this.onChange = onChange || (() => {});
    this.diagnostics = [];
    this.items = [];
    this.active = -1;
    this.completionSeq = 0;
    this.hoverSeq = 0;
    this.hoverTimer = null;
    this.completeTimer = null;
    this.accepting = false;
    this.measure();
    textarea.addEventListener("input", (e) => this.changed(e));
    textarea.addEventListener("scroll", () => {
      const moved = this.highlight.scrollTop !== textarea.scrollTop || this.highlight.scrollLeft !== textarea.scrollLeft;
      this.syncScroll();
      if (moved) this.closeCompletion(); // the popup would float away from its word
    });
    textarea.addEventListener("keydown", (e) => this.keydown(e));
    textarea.addEventListener("mousemove", (e) => this.mousemove(e));
    textarea.addEventListener("mouseleave", () => this.hideTooltip());
    textarea.addEventListener("blur", () => setTimeout(() => this.closeCompletion(), 150));
    textarea.addEventListener("click", () => this.closeCompletion());
    popup.addEventListener("mousedown", (e) => {
      const li = e.target.closest("li[data-index]");
      if (li) {
        e.preventDefault();
        this.accept(Number(li.dataset.index));
      }
    });
    window.addEventListener("resize", () => this.measure());
    this.render();
  }

  get value() {
    return this.textarea.value;
  }

  set value(text) {
    this.textarea.value = text;
    this.render();
  }

  /** Character width and line height of the editor's font. */
  measure() {
    const probe = element("span", { text: "M".repeat(100) });
    probe.style.visibility = "hidden";
    this.highlight.append(probe);
    this.charWidth = probe.getBoundingClientRect().width / 100 || 8;
    this.highlight.removeChild(probe);
    const style = getComputedStyle(this.textarea);
    this.lineHeight = parseFloat(style.lineHeight) || 18;
    this.padLeft = parseFloat(style.paddingLeft) || 0;
    this.padTop = parseFloat(style.paddingTop) || 0;
  }

  changed(event) {
    this.render();
    this.hideTooltip();
    this.onChange(this.value);
    if (this.accepting) return;
    const typed = event && event.inputType === "insertText" ? event.data || "" : "";
    // Open the list after "." and within a name or $parameter, not within a number.
    const before = this.value.slice(0, this.textarea.selectionStart);
    if (typed && (typed.endsWith(".") || /(?:^|[^\p{L}\p{N}_$])[\p{L}_$][\p{L}\p{N}_]*$/u.test(before)))
      this.scheduleCompletion(120);
    else this.closeCompletion();
  }

  syncScroll() {
    this.highlight.scrollTop = this.textarea.scrollTop;
    this.highlight.scrollLeft = this.textarea.scrollLeft;
  }

  setDiagnostics(list) {
    this.diagnostics = list;
    this.render();
  }

  /** Redraw the highlighted copy: colour runs, squiggles at each diagnostic's range. */
  render() {
    const text = this.value;
    const classes = tokenClasses(text);
    const marks = new Array(text.length).fill(-1);
    const points = new Map(); // offset -> diagnostic index, for empty ranges at a line's end
    this.diagnostics.forEach((d, i) => {
      let start = offset(text, d.range.start);
      let end = offset(text, d.range.end);
      if (end <= start) {
        if (start < text.length && text[start] !== "\n") end = start + 1;
        else {
          if (!points.has(start)) points.set(start, i);
          return;
        }
      }
      for (let k = start; k < end; k++) if (marks[k] < 0 || d.severity === "error") marks[k] = i;
    });
    const out = document.createDocumentFragment();
    const squiggle = (i, content) =>
      element("span", {
        class: `squiggle squiggle-${this.diagnostics[i].severity}`,
        "data-diagnostic": String(i),
        text: content,
      });
    let k = 0;
    while (k <= text.length) {
      if (points.has(k)) out.append(squiggle(points.get(k), " "));
      if (k === text.length) break;
      let j = k + 1;
      while (j < text.length && classes[j] === classes[k] && marks[j] === marks[k] && !points.has(j)) j++;
      const chunk = text.slice(k, j);
      if (marks[k] >= 0) {
        const span = squiggle(marks[k], chunk);
        if (classes[k]) span.classList.add(classes[k]);
        out.append(span);
      } else if (classes[k]) out.append(element("span", { class: classes[k], text: chunk }));
      else out.append(document.createTextNode(chunk));
      k = j;
    }
    out.append(document.createTextNode("\n ")); // room for a last empty line, as in the textarea
    this.highlight.replaceChildren(out);
    this.syncScroll();
  }

  /** Replace the text of a server range with `text` (undoable where the browser allows). */
  replaceRange(range, text) {
    const source = this.value;
    const start = offset(source, range.start);
    const end = offset(source, range.end);
    this.textarea.focus();
    this.textarea.setSelectionRange(start, end);
    this.accepting = true;
    let done = false;
    try {
      done = document.execCommand("insertText", false, text);
    } catch {
      done = false;
    }
    if (!done) {
      this.textarea.setRangeText(text, start, end, "end");
      this.textarea.dispatchEvent(new Event("input"));
    }
    this.accepting = false;
  }

  /** Select the text of a server range (and scroll it into view). */
  select(range) {
    const source = this.value;
    this.textarea.focus();
    this.textarea.setSelectionRange(offset(source, range.start), offset(source, range.end));
    const top = range.start.line * this.lineHeight;
    if (top < this.textarea.scrollTop || top > this.textarea.scrollTop + this.textarea.clientHeight - 2 * this.lineHeight)
      this.textarea.scrollTop = Math.max(0, top - 3 * this.lineHeight);
  }

  cursor() {
    return pos(this.value, this.textarea.selectionStart);
  }

  // ------------------------------------------------------------ completion
  scheduleCompletion(delay) {
    clearTimeout(this.completeTimer);
    this.completeTimer = setTimeout(() => this.requestCompletion(), delay);
  }

  async requestCompletion() {
    const seq = ++this.completionSeq;
    const source = this.value;
    const at = this.cursor();
    let items = [];
    try {
      items = (await this.services.complete(source, at)) || [];
    } catch {
      items = [];
    }
    if (seq !== this.completionSeq || source !== this.value) return; // typed on since: stale
    if (document.activeElement !== this.textarea) return;
    this.openCompletion(items.slice(0, 200), at);
  }

  openCompletion(items, at) {
    this.items = items;
    if (!items.length) return this.closeCompletion();
    this.active = 0;
    const list = document.createDocumentFragment();
    items.forEach((item, i) => {
      const li = element(
        "li",
        { id: `completion-${i}`, role: "option", "data-index": String(i), "aria-selected": "false" },
        element("span", { class: "label", text: item.label }),
        element("span", { class: `kind kind-${item.kind}`, text: item.kind }),
      );
      if (item.detail) li.title = item.detail;
      list.append(li);
    });
    this.popup.replaceChildren(list);
    const lineText = this.value.split("\n")[at.line] || "";
    const left = this.padLeft + visualColumn(lineText, at.character) * this.charWidth - this.textarea.scrollLeft;
    const top = this.padTop + (at.line + 1) * this.lineHeight - this.textarea.scrollTop;
    this.popup.style.left = `${Math.max(0, left)}px`;
    this.popup.style.top = `${Math.max(0, top)}px`;
    this.popup.hidden = false;
    this.textarea.setAttribute("aria-expanded", "true");
    this.highlightItem(0);
  }

  highlightItem(i) {
    const count = this.items.length;
    this.active = ((i % count) + count) % count;
    for (const li of this.popup.children) li.setAttribute("aria-selected", String(li.dataset.index == this.active));
    const current = this.popup.children[this.active];
    if (current) {
      current.scrollIntoView({ block: "nearest" });
      this.textarea.setAttribute("aria-activedescendant", current.id);
    }
  }

  closeCompletion() {
    clearTimeout(this.completeTimer);
    this.completionSeq++;
    this.items = [];
    this.popup.hidden = true;
    this.popup.replaceChildren();
    this.textarea.setAttribute("aria-expanded", "false");
    this.textarea.removeAttribute("aria-activedescendant");
  }

  accept(i) {
    const item = this.items[i];
    if (!item) return;
    const at = this.cursor();
    const range = item.range || { start: at, end: at };
    this.closeCompletion();
    this.replaceRange(range, item.insert_text || item.label);
  }

  keydown(e) {
    const open = !this.popup.hidden && this.items.length > 0;
    if ((e.ctrlKey || e.metaKey) && (e.key === " " || e.code === "Space")) {
      e.preventDefault();
      this.scheduleCompletion(0);
      return;
    }
    if (!open) {
      if (e.key === "Escape") this.hideTooltip();
      return;
    }
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      this.highlightItem(this.active + (e.key === "ArrowDown" ? 1 : -1));
    } else if (e.key === "Enter" || e.key === "Tab") {
      const item = this.items[this.active];
      const source = this.value;
      const range = item.range;
      if (e.key === "Enter" && range && source.slice(offset(source, range.start), offset(source, range.end)) === (item.insert_text || item.label)) {
        this.closeCompletion(); // the word is already complete: Enter is a new line
        return;
      }
      e.preventDefault();
      this.accept(this.active);
    } else if (e.key === "Escape") {
      e.preventDefault();
      this.closeCompletion();
    } else if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End") {
      this.closeCompletion();
    }
  }

  // ------------------------------------------------------------ hover
  /** The server position under the mouse, or null past the text. */
  positionAt(e) {
    const rect = this.textarea.getBoundingClientRect();
    const x = e.clientX - rect.left - this.padLeft + this.textarea.scrollLeft;
    const y = e.clientY - rect.top - this.padTop + this.textarea.scrollTop;
    if (x < 0 || y < 0) return null;
    const lines = this.value.split("\n");
    const line = Math.floor(y / this.lineHeight);
    if (line >= lines.length) return null;
    const column = Math.floor(x / this.charWidth);
    const character = characterAt(lines[line], column);
    if (character >= Array.from(lines[line]).length + 1) return null;
    return { line, character, x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  mousemove(e) {
    clearTimeout(this.hoverTimer);
    const at = this.positionAt(e);
    if (!at) return this.hideTooltip();
    const before = (a, b) => a.line < b.line || (a.line === b.line && a.character < b.character);
    const inside = (d) => {
      const r = d.range;
      const end = before(r.start, r.end) ? r.end : { line: r.end.line, character: r.end.character + 1 };
      return !before(at, r.start) && before(at, end);
    };
    const found = this.diagnostics.filter(inside);
    if (found.length) {
      this.showTooltip(found.map(diagnosticText).join("\n\n"), at, "diagnostic");
      return;
    }
    if (this.tooltip.dataset.kind === "diagnostic") this.hideTooltip();
    this.hoverTimer = setTimeout(() => this.requestHover(at), 350);
  }

  async requestHover(at) {
    const seq = ++this.hoverSeq;
    const source = this.value;
    let shown = null;
    try {
      shown = await this.services.hover(source, { line: at.line, character: at.character });
    } catch {
      shown = null;
    }
    if (seq !== this.hoverSeq || source !== this.value) return;
    if (shown && shown.markdown) this.showTooltip(plainMarkdown(shown.markdown), at, "hover");
    else this.hideTooltip();
  }

  showTooltip(text, at, kind) {
    this.tooltip.textContent = text;
    this.tooltip.dataset.kind = kind;
    this.tooltip.style.left = `${Math.max(0, at.x + 8)}px`;
    this.tooltip.style.top = `${at.y + this.lineHeight}px`;
    this.tooltip.hidden = false;
  }

  hideTooltip() {
    clearTimeout(this.hoverTimer);
    this.hoverSeq++;
    this.tooltip.hidden = true;
    this.tooltip.dataset.kind = "";
  }
}

/** Markdown shown as plain text: code fences and emphasis markers dropped. */
export function plainMarkdown(markdown) {
  return markdown
    .replace(/^```\w*\n?/gm, "")
    .replace(/`([^`]*)`/g, "$1")
    .replace(/\*\*([^*]*)\*\*/g, "$1")
    .trim();
}
