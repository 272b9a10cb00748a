// A small accessibility checker, run in the page by the browser tests.
// It returns a list of problems: form fields without a label, buttons and
// links without an accessible name, images without alt, and text whose
// contrast with its background is below WCAG AA (4.5:1, 3:1 for large
// text), from the computed colors.
(() => {
  const problems = [];
  const visible = (el) => el.checkVisibility ? el.checkVisibility({ visibilityProperty: true, opacityProperty: true }) : !!el.offsetParent;
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (el.getAttribute("name")) s += "[name=" + el.getAttribute("name") + "]";
    const text = (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
    if (text) s += " \"" + text + "\"";
    return s;
  };
  const labelledBy = (el) => (el.getAttribute("aria-labelledby") || "").split(/\s+/)
    .map((id) => document.getElementById(id)).filter(Boolean).map((n) => n.textContent.trim()).join(" ");
  const accName = (el) => (el.getAttribute("aria-label") || "").trim() || labelledBy(el) ||
    (el.textContent || "").trim() || (el.getAttribute("title") || "").trim() ||
    [...el.querySelectorAll("img[alt]")].map((i) => i.alt).join(" ").trim();

  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const hasLabel = (el.labels && [...el.labels].some((l) => l.textContent.trim())) ||
      (el.getAttribute("aria-label") || "").trim() || labelledBy(el);
    if (!hasLabel) problems.push("form field without a label: " + describe(el));
  }
  for (const el of document.querySelectorAll("button, a[href], summary, [role=button]")) {
    if (!accName(el)) problems.push("control without an accessible name: " + describe(el));
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("image without alt: " + describe(img));
  }

  // Contrast.
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const blend = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a),
    a: 1,
  });
  const background = (el) => {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    const canvas = parse(getComputedStyle(document.documentElement).backgroundColor);
    if (canvas && canvas.a >= 1) bg = canvas;
    for (let i = layers.length - 1; i >= 0; i--) bg = blend(layers[i], bg);
    return bg;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const checked = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const targets = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const el = n.parentElement;
    if (!el || checked.has(el)) continue;
    checked.add(el);
    targets.push(el);
  }
  for (const el of document.querySelectorAll("input:not([type=hidden]):not([type=checkbox]), textarea, select")) targets.push(el);
  for (const el of targets) {
    if (!visible(el) || el.closest("[hidden], .visually-hidden, .skip")) continue;
    const s = getComputedStyle(el);
    const fg = parse(s.color);
    if (!fg) continue;
    const bg = background(el);
    const r = ratio(blend(fg, bg), bg);
    const size = parseFloat(s.fontSize);
    const bold = parseInt(s.fontWeight, 10) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const need = large ? 3 : 4.5;
    if (r < need) problems.push("contrast " + r.toFixed(2) + ":1 < " + need + ":1 for " + describe(el) + " (" + s.color + " on rgb(" + [bg.r, bg.g, bg.b].map(Math.round).join(",") + "))");
  }
  return problems;
})()
