// The review page's keyboard and selection helpers. The page works without this file (every
// action is a plain form); with it: j/k move, x selects, shift-click selects a range, r/a/d/b act,
// u undoes, / searches, ? shows the keys. Served from the page's own origin (CSP script-src 'self').
(() => {
  'use strict';
  document.documentElement.classList.add('js');
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const form = $('form[data-triage]');
  const rows = $$('tr[data-row]');
  const boxes = rows.map((r) => $('td.pick input[type=checkbox]', r)).filter(Boolean);
  const pickAll = $('[data-pick-all]');
  const allMatching = $('[data-all-matching]');
  const allBox = allMatching ? $('input', allMatching) : null;
  const help = $('#keys');
  let cursor = -1;
  let last = -1;

  function update() {
    const n = boxes.filter((b) => b.checked).length;
    const count = $('[data-count]');
    if (count) count.textContent = n > 0 ? `${n} selected` : 'Select';
    if (pickAll) pickAll.checked = n > 0 && n === boxes.length;
    const whole = n > 0 && n === boxes.length;
    if (allMatching) allMatching.classList.toggle('shown', whole);
    if (allBox && !whole) allBox.checked = false;
    for (const bar of $$('[data-bar]')) bar.classList.toggle('active', n > 0);
    rows.forEach((r, i) => r.classList.toggle('picked', Boolean(boxes[i] && boxes[i].checked)));
  }

  boxes.forEach((box, i) => {
    box.addEventListener('click', (e) => {
      if (e.shiftKey && last >= 0 && last !== i) {
        const [a, z] = last < i ? [last, i] : [i, last];
        for (let j = a; j <= z; j++) boxes[j].checked = box.checked;
      }
      last = i;
      update();
    });
  });
  if (pickAll) {
    pickAll.addEventListener('change', () => {
      for (const b of boxes) b.checked = pickAll.checked;
      update();
    });
  }

  function move(to) {
    if (rows.length === 0) return;
    cursor = Math.max(0, Math.min(rows.length - 1, to));
    rows.forEach((r, i) => r.classList.toggle('cursor', i === cursor));
    rows[cursor].scrollIntoView({ block: 'nearest' });
  }

  function press(key) {
    const button = $(`button[data-key="${key}"]`);
    if (!button) return false;
    if (form && boxes.every((b) => !b.checked) && cursor >= 0 && boxes[cursor]) {
      boxes[cursor].checked = true;
      update();
    }
    button.click();
    return true;
  }

  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
  }
  for (const b of $$('[data-help]')) {
    b.hidden = false;
    b.addEventListener('click', () => toggleHelp());
  }
  for (const b of $$('[data-help-close]')) b.addEventListener('click', () => toggleHelp(false));

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
      if (e.key === 'Escape') t.blur();
      return;
    }
    const link = (sel) => {
      const a = $(sel);
      if (a) window.location.assign(a.getAttribute('href'));
      return Boolean(a);
    };
    let done = true;
    switch (e.key) {
      case 'j':
        done = rows.length > 0 ? (move(cursor + 1), true) : link('[data-next]');
        break;
      case 'k':
        done = rows.length > 0 ? (move(cursor - 1), true) : link('[data-prev]');
        break;
      case 'x':
        if (cursor >= 0 && boxes[cursor]) {
          boxes[cursor].checked = !boxes[cursor].checked;
          last = cursor;
          update();
        }
        break;
      case 'o':
      case 'Enter':
        if (cursor >= 0 && rows[cursor]) {
          const a = $('td.subject a', rows[cursor]) || $('a', rows[cursor]);
          if (a) window.location.assign(a.getAttribute('href'));
        } else done = false;
        break;
      case 'r':
      case 'a':
      case 'd':
      case 'b':
      case 'u':
        done = press(e.key);
        break;
      case '/': {
        const s = $('[data-search]');
        if (s) s.focus();
        done = Boolean(s);
        break;
      }
      case '?':
        toggleHelp();
        break;
      case 'Escape':
        toggleHelp(false);
        break;
      default:
        done = false;
    }
    if (done) e.preventDefault();
  });
  // The HTML frame as tall as the message (up to FIT_MAX px; beyond, it scrolls inside). The frame
  // is sandboxed without scripts but keeps its origin, so this script can read its height; the
  // message itself never runs anything.
  const FIT_MAX = 12000;
  for (const frame of $$('iframe[data-fit]')) {
    const fit = () => {
      const doc = frame.contentDocument;
      if (!doc || !doc.documentElement || doc.URL === 'about:blank') return;
      // The document is at least as tall as its frame: shrink the frame first, then measure (one
      // task, so nothing is painted in between).
      frame.style.height = '80px';
      const h = doc.documentElement.scrollHeight;
      frame.style.height = `${Math.min(FIT_MAX, Math.max(80, h + 2))}px`;
      frame.classList.add('fitted');
    };
    frame.addEventListener('load', fit);
    if (frame.contentDocument && frame.contentDocument.readyState === 'complete') fit(); // loaded before this ran
    let timer = 0;
    window.addEventListener('resize', () => {
      clearTimeout(timer);
      timer = setTimeout(fit, 100);
    });
  }
  update();
})();
