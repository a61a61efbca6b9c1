/**
 * Checks that run inside the page. They are plain JavaScript source (for page.evaluate), because
 * the test build has no DOM types and adding them would change type checking for every test.
 */

/** Text whose colour contrast is under WCAG AA (4.5:1, 3:1 for large text) against its actual background. */
export const CONTRAST_FAILURES = `(() => {
  const parse = (c) => {
    const parts = ((/rgba?\\(([^)]+)\\)/.exec(c) || [])[1] || '0,0,0,0').split(/[\\s,/]+/).filter(Boolean).map(Number);
    return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
  };
  const luminance = (c) => {
    const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.a > 0.5) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const failures = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('option, noscript, dialog:not([open]), [disabled]')) continue;
    if (![...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim())) continue;
    if (el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    const fg = luminance(parse(style.color));
    const bg = luminance(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) failures.push(el.tagName.toLowerCase() + ' "' + el.textContent.trim().slice(0, 30) + '": ' + ratio.toFixed(2));
  }
  return failures;
})()`;

/** Unlabelled controls, fake buttons, positive tabindex, unnamed buttons, missing live regions or language. */
export const ACCESSIBILITY_PROBLEMS = `(() => {
  const out = [];
  for (const control of document.querySelectorAll('input, select, textarea')) {
    if (!(control.labels && control.labels.length) && !control.getAttribute('aria-label')) out.push('unlabelled ' + (control.name || control.id));
  }
  for (const el of document.querySelectorAll('[onclick], [role=button], [tabindex]')) {
    if (Number(el.getAttribute('tabindex')) > 0) out.push('positive tabindex');
    if (el.hasAttribute('onclick') || el.getAttribute('role') === 'button') out.push('fake button ' + el.tagName);
  }
  for (const b of document.querySelectorAll('button')) if (!b.textContent.trim() && !b.getAttribute('aria-label')) out.push('button without a name');
  if (!document.querySelector('#status[role=status][aria-live=polite]')) out.push('no status live region');
  if (!document.querySelector('#updated[aria-live=polite]')) out.push('no refresh live region');
  if (document.documentElement.lang !== 'en') out.push('no page language');
  return out;
})()`;

/** The focused element's text and focus ring. */
export const FOCUS = `(() => {
  const el = document.activeElement;
  const style = el ? getComputedStyle(el) : undefined;
  return { text: el ? el.textContent : '', outline: style ? style.outlineStyle + ' ' + style.outlineWidth : '', shadow: style ? style.boxShadow : '' };
})()`;

export const PAGE_WIDTH = '({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth })';

/** True once the first badge of the view (the task's status) reads `status`. */
export const statusIs = (status: string): string => `document.querySelector('main p .badge')?.textContent === ${JSON.stringify(status)}`;

/** True once the overview's row for `queue` shows `value` in column `column` (0-based). */
export const queueCellIs = (queue: string, column: number, value: string): string =>
  `[...document.querySelectorAll('tbody tr')].find((r) => r.querySelector('a')?.textContent === ${JSON.stringify(queue)})` +
  `?.querySelectorAll('td')[${column}]?.textContent === ${JSON.stringify(value)}`;

/** True once the progress bar labelled `label` is at `value`. */
export const progressIs = (label: string, value: number): string =>
  `document.querySelector('progress[aria-label=' + ${JSON.stringify(JSON.stringify(label))} + ']')?.value === ${value}`;

/** True once the view titled `title` shows its data (a table or a field list), not the previous view's. */
export const viewShows = (title: string): string =>
  `document.querySelector('main h2')?.textContent === ${JSON.stringify(title)} && !!document.querySelector('main table, main dl')`;
