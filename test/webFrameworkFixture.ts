// A small web framework written to disk, shaped like the public one the relevance ranking went
// wrong on: lib/response.js implements res.type (alias res.contentType) among many other
// response methods, in long documented functions; test/res.type.js calls res.type over and over
// and names Content-Type in nearly every line; the rest of the tree mentions both now and then.

import * as fs from 'node:fs';
import * as path from 'node:path';

export const CONTENT_TYPE_QUESTION = 'How does res.type pick the Content-Type?';
export const IMPLEMENTATION = 'lib/response.js';
export const TYPE_TEST = 'test/res.type.js';

/** A documented `res.NAME = function NAME(args) { body }` the way the framework writes its methods. */
function method(target: string, name: string, args: string, doc: string, body: string[]): string {
  return [`/**`, ...doc.split('\n').map((l) => ` * ${l}`), ` */`, '', `${target}.${name} = function ${name}(${args}) {`, ...body.map((l) => `  ${l}`), '};', ''].join('\n');
}

const RESPONSE_METHODS: [string, string, string, string[]][] = [
  ['status', 'code', 'Sets the status code of the response.\n\n@param {Number} code\n@return {ServerResponse} for chaining', ['if (!Number.isInteger(code)) throw new TypeError("status code must be an integer");', 'this.statusCode = code;', 'return this;']],
  ['links', 'links', 'Sets the Link header field from an object of relations to URLs.\n\n   res.links({ next: "/users?page=2", last: "/users?page=5" });', ['var link = this.get("Link") || "";', 'if (link) link += ", ";', 'return this.set("Link", link + Object.keys(links).map(function (rel) {', '  return "<" + links[rel] + ">; rel=\\"" + rel + "\\"";', '}).join(", "));']],
  ['send', 'body', 'Sends a response body: a string as HTML unless a type is set, a Buffer as\nan octet stream, anything else as JSON. Sets Content-Length and an ETag,\nand answers 304 to a fresh conditional GET.', ['var chunk = body;', 'var encoding;', 'var req = this.req;', 'switch (typeof chunk) {', '  case "string":', '    if (!this.get("Content-Type")) this.type("html");', '    break;', '  case "object":', '    if (chunk === null) chunk = "";', '    else if (Buffer.isBuffer(chunk)) { if (!this.get("Content-Type")) this.type("bin"); }', '    else return this.json(chunk);', '    break;', '}', 'if (typeof chunk === "string") {', '  encoding = "utf8";', '  this.set("Content-Type", setCharset(this.get("Content-Type"), "utf-8"));', '}', 'if (chunk !== undefined) {', '  if (!Buffer.isBuffer(chunk)) chunk = Buffer.from(chunk, encoding);', '  this.set("Content-Length", chunk.length);', '  var etag = this.app.get("etag fn");', '  if (etag && !this.get("ETag")) this.set("ETag", etag(chunk, encoding));', '}', 'if (req.fresh) this.statusCode = 304;', 'if (this.statusCode === 204 || this.statusCode === 304) {', '  this.removeHeader("Content-Type");', '  this.removeHeader("Content-Length");', '  chunk = "";', '}', 'if (req.method === "HEAD") this.end();', 'else this.end(chunk, encoding);', 'return this;']],
  ['json', 'obj', 'Sends a JSON response, with the replacer and spacing the application sets.', ['var app = this.app;', 'var body = JSON.stringify(obj, app.get("json replacer"), app.get("json spaces"));', 'if (!this.get("Content-Type")) this.set("Content-Type", "application/json");', 'return this.send(body);']],
  ['jsonp', 'obj', 'Sends JSON wrapped in the callback the query names, for JSONP clients.', ['var app = this.app;', 'var body = JSON.stringify(obj, app.get("json replacer"), app.get("json spaces"));', 'var callback = this.req.query[app.get("jsonp callback name")];', 'if (Array.isArray(callback)) callback = callback[0];', 'if (typeof callback === "string" && callback.length !== 0) {', '  this.set("X-Content-Type-Options", "nosniff");', '  this.set("Content-Type", "text/javascript");', '  callback = callback.replace(/[^\\[\\]\\w$.]/g, "");', '  body = "/**/ typeof " + callback + " === \\"function\\" && " + callback + "(" + body + ");";', '}', 'return this.send(body);']],
  ['sendStatus', 'statusCode', 'Sends the status code with its standard description as the body.', ['var body = statuses.message[statusCode] || String(statusCode);', 'this.statusCode = statusCode;', 'this.type("txt");', 'return this.send(body);']],
  ['sendFile', 'path, options, callback', 'Transfers the file at an absolute path, streaming it with the send module;\nthe callback sees any error, otherwise errors go to next().', ['var req = this.req;', 'var res = this;', 'if (!path) throw new TypeError("path argument is required to res.sendFile");', 'if (typeof options === "function") { callback = options; options = {}; }', 'options = options || {};', 'if (!options.root && !isAbsolute(path)) throw new TypeError("path must be absolute or specify root to res.sendFile");', 'var file = send(req, encodeURI(path), options);', 'streamFile(res, file, options, function (err) {', '  if (callback) return callback(err);', '  if (err && err.code === "EISDIR") return req.next();', '  if (err && err.code !== "ECONNABORTED" && err.syscall !== "write") req.next(err);', '});']],
  ['download', 'path, filename, options, callback', 'Transfers a file as an attachment, so that browsers offer to save it.', ['var name = filename || path;', 'var headers = Object.assign({}, options && options.headers);', 'headers["Content-Disposition"] = contentDisposition(name);', 'var opts = Object.assign({}, options, { headers: headers });', 'return this.sendFile(resolve(path), opts, callback);']],
  ['format', 'obj', 'Answers with the first handler whose MIME type the request accepts, or 406.\nThe handler runs with Content-Type already set to the type it is for.', ['var req = this.req;', 'var next = req.next;', 'var keys = Object.keys(obj).filter(function (v) { return v !== "default"; });', 'var key = keys.length > 0 ? req.accepts(keys) : false;', 'this.vary("Accept");', 'if (key) {', '  this.set("Content-Type", normalizeType(key).value);', '  obj[key](req, this, next);', '} else if (obj.default) {', '  obj.default(req, this, next);', '} else {', '  next(createError(406, { types: normalizeTypes(keys).map(function (o) { return o.value; }) }));', '}', 'return this;']],
  ['attachment', 'filename', 'Sets Content-Disposition to attachment, and the type from the file name.', ['if (filename) this.type(extname(filename));', 'this.set("Content-Disposition", contentDisposition(filename));', 'return this;']],
  ['append', 'field, value', 'Appends a value to a header field, keeping the values already set.', ['var prev = this.get(field);', 'var next = value;', 'if (prev) next = Array.isArray(prev) ? prev.concat(value) : Array.isArray(value) ? [prev].concat(value) : [prev, value];', 'return this.set(field, next);']],
  ['set', 'field, value', 'Sets a header field (or several, from an object); a Content-Type without a\ncharset gets one from the mime module.', ['if (arguments.length === 2) {', '  var text = Array.isArray(value) ? value.map(String) : String(value);', '  if (field.toLowerCase() === "content-type") {', '    if (Array.isArray(text)) throw new TypeError("Content-Type cannot be set to an Array");', '    text = mime.contentType(text);', '  }', '  this.setHeader(field, text);', '} else {', '  for (var key in field) this.set(key, field[key]);', '}', 'return this;']],
  ['get', 'field', 'The value of a response header field.', ['return this.getHeader(field);']],
  ['clearCookie', 'name, options', 'Clears a cookie by setting it to expire in the past.', ['var opts = Object.assign({ expires: new Date(1), path: "/" }, options);', 'return this.cookie(name, "", opts);']],
  ['cookie', 'name, value, options', 'Sets a cookie, signed when options.signed is set, as JSON when the value is an object.', ['var opts = Object.assign({}, options);', 'var secret = this.req.secret;', 'if (opts.signed && !secret) throw new Error("cookieParser(\\"secret\\") required for signed cookies");', 'var val = typeof value === "object" ? "j:" + JSON.stringify(value) : String(value);', 'if (opts.signed) val = "s:" + sign(val, secret);', 'if (opts.maxAge != null) { opts.expires = new Date(Date.now() + opts.maxAge); opts.maxAge = Math.floor(opts.maxAge / 1000); }', 'if (opts.path == null) opts.path = "/";', 'this.append("Set-Cookie", cookie.serialize(name, String(val), opts));', 'return this;']],
  ['location', 'url', 'Sets the Location header, encoded; "back" means the Referrer.', ['var loc = url === "back" ? this.req.get("Referrer") || "/" : url;', 'return this.set("Location", encodeUrl(loc));']],
  ['redirect', 'url, status', 'Redirects to a URL with a short body in the format the client accepts.', ['var address = url;', 'var code = status || 302;', 'var body;', 'address = this.location(address).get("Location");', 'this.format({', '  text: function () { body = statuses.message[code] + ". Redirecting to " + address; },', '  html: function () { body = "<p>" + statuses.message[code] + ". Redirecting to " + escapeHtml(address) + "</p>"; },', '  default: function () { body = ""; }', '});', 'this.statusCode = code;', 'this.set("Content-Length", Buffer.byteLength(body));', 'if (this.req.method === "HEAD") this.end();', 'else this.end(body);']],
  ['vary', 'field', 'Adds a field to the Vary response header.', ['vary(this, field);', 'return this;']],
  ['render', 'view, options, callback', 'Renders a view with the application\'s engine and sends the result.', ['var app = this.req.app;', 'var done = callback;', 'var opts = options || {};', 'var req = this.req;', 'var self = this;', 'if (typeof options === "function") { done = options; opts = {}; }', 'opts._locals = self.locals;', 'done = done || function (err, str) { if (err) return req.next(err); self.send(str); };', 'app.render(view, opts, done);']],
];

function responseJs(): string {
  const parts = [
    '"use strict";',
    '',
    'var contentDisposition = require("content-disposition");',
    'var createError = require("http-errors");',
    'var encodeUrl = require("encodeurl");',
    'var escapeHtml = require("escape-html");',
    'var http = require("node:http");',
    'var path = require("node:path");',
    'var statuses = require("statuses");',
    'var cookie = require("cookie");',
    'var send = require("send");',
    'var mime = require("mime-types");',
    'var vary = require("vary");',
    'var sign = require("cookie-signature").sign;',
    'var utils = require("./utils");',
    'var isAbsolute = utils.isAbsolute;',
    'var normalizeType = utils.normalizeType;',
    'var normalizeTypes = utils.normalizeTypes;',
    'var setCharset = utils.setCharset;',
    'var extname = path.extname;',
    'var resolve = path.resolve;',
    '',
    '/** The response prototype: every response the application makes inherits from it. */',
    'var res = Object.create(http.ServerResponse.prototype);',
    'module.exports = res;',
    '',
  ];
  for (const [name, args, doc, body] of RESPONSE_METHODS.slice(0, 9)) parts.push(method('res', name, args, doc, body));
  parts.push(
    '/**',
    ' * Sets the Content-Type response header: a bare extension or name ("html", ".png")',
    ' * is looked up with mime.contentType(), a value with a "/" is used as it is.',
    ' *',
    ' *     res.type(".html");',
    ' *     res.type("json");',
    ' *     res.type("application/json");',
    ' *',
    ' * @param {String} type',
    ' * @return {ServerResponse} for chaining',
    ' */',
    '',
    'res.contentType =',
    'res.type = function contentType(type) {',
    '  var ct = type.indexOf("/") === -1 ? mime.contentType(type) || "application/octet-stream" : type;',
    '  return this.set("Content-Type", ct);',
    '};',
    '',
  );
  for (const [name, args, doc, body] of RESPONSE_METHODS.slice(9)) parts.push(method('res', name, args, doc, body));
  parts.push(
    '/** Pipes a send stream to the response, turning its events into one callback. */',
    'function streamFile(res, file, options, callback) {',
    '  var done = false;',
    '  file.on("error", function (err) { if (!done) { done = true; callback(err); } });',
    '  file.on("end", function () { if (!done) { done = true; callback(); } });',
    '  file.pipe(res);',
    '}',
    '',
  );
  return parts.join('\n');
}

const TYPE_CASES: [string, string][] = [
  ['.js', 'text/javascript; charset=utf-8'],
  ['json', 'application/json; charset=utf-8'],
  ['html', 'text/html; charset=utf-8'],
  ['application/vnd.amazon.ebook', 'application/vnd.amazon.ebook'],
  ['png', 'image/png'],
  ['.png', 'image/png'],
  ['rawr', 'application/octet-stream'],
  ['txt', 'text/plain; charset=utf-8'],
  ['text/x-custom; charset=latin1', 'text/x-custom; charset=latin1'],
  ['csv', 'text/csv; charset=utf-8'],
];

function typeTestJs(): string {
  const parts = ['"use strict";', '', 'var tinyweb = require("../");', 'var request = require("supertest");', '', 'describe("res", function () {', '  describe(".type(str)", function () {'];
  for (const [arg, expected] of TYPE_CASES) {
    parts.push(
      `    it("should set the Content-Type for res.type(${JSON.stringify(arg)})", function (done) {`,
      '      var app = tinyweb();',
      '      app.use(function (req, res) {',
      `        res.type(${JSON.stringify(arg)}).end("ok");`,
      '      });',
      `      request(app).get("/").expect("Content-Type", ${JSON.stringify(expected)}).expect(200, done);`,
      '    });',
      '',
    );
  }
  parts.push('  });', '', '  describe(".contentType(str)", function () {');
  for (const [arg, expected] of TYPE_CASES.slice(0, 4)) {
    parts.push(
      `    it("res.contentType(${JSON.stringify(arg)}) sets the same Content-Type as res.type", function (done) {`,
      '      var app = tinyweb();',
      '      app.use(function (req, res) {',
      `        res.contentType(${JSON.stringify(arg)}).end("ok");`,
      '      });',
      `      request(app).get("/").expect("Content-Type", ${JSON.stringify(expected)}).expect(200, done);`,
      '    });',
      '',
    );
  }
  parts.push('  });', '});', '');
  return parts.join('\n');
}

function sendTestJs(): string {
  const parts = ['"use strict";', '', 'var tinyweb = require("../");', 'var request = require("supertest");', '', 'describe("res.send(body)", function () {'];
  const cases: [string, string][] = [['"<p>hey</p>"', 'text/html; charset=utf-8'], ['Buffer.from("hello")', 'application/octet-stream'], ['{ name: "tobi" }', 'application/json; charset=utf-8'], ['""', 'text/html; charset=utf-8']];
  for (const [body, type] of cases) {
    parts.push(
      `  it("should send ${body.replace(/"/g, "'")} with its Content-Type", function (done) {`,
      '    var app = tinyweb();',
      `    app.use(function (req, res) { res.send(${body}); });`,
      `    request(app).get("/").expect("Content-Type", "${type}").expect(200, done);`,
      '  });',
      '',
    );
  }
  parts.push('});', '');
  return parts.join('\n');
}

const REQUEST_JS = `"use strict";

var accepts = require("accepts");
var typeis = require("type-is");
var http = require("node:http");
var parseRange = require("range-parser");

/** The request prototype. */
var req = Object.create(http.IncomingMessage.prototype);
module.exports = req;

/**
 * The value of a request header field; Referrer and Referer are the same.
 */
req.get = req.header = function header(name) {
  var lc = name.toLowerCase();
  if (lc === "referer" || lc === "referrer") return this.headers.referrer || this.headers.referer;
  return this.headers[lc];
};

/**
 * The first of the given types the request accepts (its Accept header), or false.
 */
req.accepts = function () {
  var accept = accepts(this);
  return accept.types.apply(accept, arguments);
};

/**
 * Whether the request body has one of the given MIME types, from its Content-Type header.
 */
req.is = function is(types) {
  var arr = Array.isArray(types) ? types : Array.prototype.slice.call(arguments);
  return typeis(this, arr);
};

/**
 * Parses the Range header against a size.
 */
req.range = function range(size, options) {
  var value = this.get("Range");
  if (!value) return;
  return parseRange(size, value, options);
};

/**
 * Whether the request is fresh: its cache validators still match the response.
 */
Object.defineProperty(req, "fresh", {
  get: function () {
    var status = this.res.statusCode;
    if (this.method !== "GET" && this.method !== "HEAD") return false;
    return (status >= 200 && status < 300) || status === 304;
  },
});
`;

const UTILS_JS = `"use strict";

var mime = require("mime-types");
var contentType = require("content-type");

/** Whether a path is absolute, on POSIX or Windows. */
exports.isAbsolute = function (path) {
  if (path[0] === "/") return true;
  if (path[1] === ":" && (path[2] === "\\\\" || path[2] === "/")) return true;
  return path.substring(0, 2) === "\\\\\\\\";
};

/** A type name or MIME type as { value, params }, the way res.format wants it. */
exports.normalizeType = function (type) {
  return ~type.indexOf("/") ? acceptParams(type) : { value: mime.lookup(type) || "application/octet-stream", params: {} };
};

/** normalizeType for a list. */
exports.normalizeTypes = function (types) {
  return types.map(exports.normalizeType);
};

/** Sets the charset parameter of a Content-Type value. */
exports.setCharset = function setCharset(type, charset) {
  if (!type || !charset) return type;
  var parsed = contentType.parse(type);
  parsed.parameters.charset = charset;
  return contentType.format(parsed);
};

function acceptParams(str) {
  var parts = str.split(/ *; */);
  var ret = { value: parts[0], quality: 1, params: {} };
  for (var i = 1; i < parts.length; ++i) {
    var pms = parts[i].split(/ *= */);
    if (pms[0] === "q") ret.quality = parseFloat(pms[1]);
    else ret.params[pms[0]] = pms[1];
  }
  return ret;
}
`;

const APPLICATION_JS = `"use strict";

var http = require("node:http");
var Router = require("./router");

/** The application prototype. */
var app = exports = module.exports = {};

/** Sets up the default settings. */
app.init = function init() {
  this.cache = Object.create(null);
  this.settings = Object.create(null);
  this.set("etag", "weak");
  this.set("jsonp callback name", "callback");
};

/** Adds middleware, optionally under a path. */
app.use = function use(fn) {
  this.router.use.apply(this.router, arguments);
  return this;
};

/** Sets a setting, or returns it when called with one argument. */
app.set = function set(setting, val) {
  if (arguments.length === 1) return this.settings[setting];
  this.settings[setting] = val;
  return this;
};

/** Renders a view with the registered engine for its extension. */
app.render = function render(name, options, callback) {
  var view = new this.settings.view(name, { engines: this.engines, root: this.get("views") });
  view.render(options, callback);
};

/** Starts an HTTP server on the given port. */
app.listen = function listen() {
  var server = http.createServer(this);
  return server.listen.apply(server, arguments);
};
`;

const README = `# tinyweb

A small web framework.

\`\`\`js
var app = require("tinyweb")();
app.use(function (req, res) {
  res.type("json").send({ hello: "world" });
});
app.listen(3000);
\`\`\`

Responses have status, send, json, jsonp, sendFile, download, format, type, set, cookie and
redirect; requests have get, accepts, is, range and fresh. Run the tests with \`npm test\`.
`;

/** Writes the framework under `root`; returns the relative paths written. */
export function writeWebFramework(root: string): string[] {
  const files: Record<string, string> = {
    'lib/response.js': responseJs(),
    'lib/request.js': REQUEST_JS,
    'lib/utils.js': UTILS_JS,
    'lib/application.js': APPLICATION_JS,
    'test/res.type.js': typeTestJs(),
    'test/res.send.js': sendTestJs(),
    'README.md': README,
  };
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return Object.keys(files);
}
