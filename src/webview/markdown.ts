// Model output → safe HTML for the webview, with two maintained libraries: markdown-it parses
// the Markdown with `html: false` (raw HTML in the text stays text) and DOMPurify then keeps
// only the tags and attributes markdown-it writes for the constructs we show. Link targets are
// limited to http(s) URLs and relative paths (workspace files); images, SVG, MathML, iframes,
// forms and style never survive. The webview's CSP (default-src 'none', one script by nonce) is
// the second wall. `window` is a parameter so the same code is tested under jsdom.

import MarkdownIt from 'markdown-it';
import createDOMPurify, { type Config, type DOMPurify } from 'dompurify';

/** The tags markdown-it writes for what the chat shows; everything else is dropped by DOMPurify. */
const ALLOWED_TAGS = ['p', 'br', 'hr', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'strong', 'em', 's', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li', 'a', 'table', 'thead', 'tbody', 'tr', 'th', 'td'];
/** href on links, class on code (language-ts), start on ordered lists. */
const ALLOWED_ATTR = ['href', 'class', 'start'];
/** http(s) or a relative path: no scheme, not protocol-relative. */
const SAFE_HREF = /^(?:https?:\/\/|(?![a-z][a-z0-9+.-]*:|\/\/)[\w./#:-])/i;

const PURIFY_CONFIG: Config = {
  ALLOWED_TAGS,
  ALLOWED_ATTR,
  ALLOWED_URI_REGEXP: SAFE_HREF,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
};

const markdownIt = new MarkdownIt({ html: false, linkify: false, typographer: false, breaks: false });
// An image would be a request the answer chooses; markdown-it's validateLink already refuses javascript:, vbscript:, file: and most data: URLs.
markdownIt.disable('image');
markdownIt.validateLink = (url) => SAFE_HREF.test(url.trim());

const purifiers = new WeakMap<object, DOMPurify>();

function purifierFor(window: Window): DOMPurify {
  let purify = purifiers.get(window);
  if (!purify) {
    purify = createDOMPurify(window as unknown as Parameters<typeof createDOMPurify>[0]);
    // class is kept only as markdown-it writes it on code: language-<name>.
    purify.addHook('uponSanitizeAttribute', (node, data) => {
      if (data.attrName === 'class' && (node.nodeName !== 'CODE' || !/^language-[\w+#.-]+$/.test(data.attrValue))) data.keepAttr = false;
      if (data.attrName === 'start' && (node.nodeName !== 'OL' || !/^\d{1,6}$/.test(data.attrValue))) data.keepAttr = false;
    });
    purifiers.set(window, purify);
  }
  return purify;
}

/** Markdown → sanitized HTML as a string (what `renderMarkdownInto` puts in the DOM). */
export function renderMarkdown(markdown: string, window: Window = globalThis.window): string {
  return purifierFor(window).sanitize(markdownIt.render(markdown), PURIFY_CONFIG) as unknown as string;
}

/** Markdown → a sanitized fragment, ready to append: DOMPurify returns DOM nodes, no markup string is parsed again. */
export function renderMarkdownFragment(markdown: string, window: Window = globalThis.window): DocumentFragment {
  return purifierFor(window).sanitize(markdownIt.render(markdown), { ...PURIFY_CONFIG, RETURN_DOM_FRAGMENT: true });
}
