// The names a source file defines, found line by line with regular expressions: functions,
// classes, methods, interfaces, types, enums, top-level constants and assigned functions, for
// TypeScript/JavaScript, Python, Go, Rust, the C family (C, C++, Java, C#, Kotlin, Swift, Scala,
// PHP, Dart) and Ruby. It is a cheap approximation of a parser (no native code, no grammar to
// ship): it finds what a reader scanning the file for "where is X defined" would find, misses
// definitions spread over unusual layouts, and may take a call for a definition now and then.
// Relevance uses it to tell the file that defines a name a question asks about from the files
// that only mention it.

type Language = 'js' | 'python' | 'go' | 'rust' | 'cfamily' | 'ruby';

const LANGUAGE_BY_EXTENSION: Record<string, Language> = {
  ts: 'js', tsx: 'js', mts: 'js', cts: 'js', js: 'js', jsx: 'js', mjs: 'js', cjs: 'js', vue: 'js', svelte: 'js',
  py: 'python', pyi: 'python',
  go: 'go',
  rs: 'rust',
  c: 'cfamily', h: 'cfamily', cc: 'cfamily', cpp: 'cfamily', cxx: 'cfamily', hpp: 'cfamily', hh: 'cfamily', hxx: 'cfamily', m: 'cfamily', mm: 'cfamily',
  java: 'cfamily', cs: 'cfamily', kt: 'cfamily', kts: 'cfamily', swift: 'cfamily', scala: 'cfamily', php: 'cfamily', dart: 'cfamily', groovy: 'cfamily',
  rb: 'ruby',
};

/** Words that the patterns can catch in a name's place but never name a definition. */
const NOT_NAMES = new Set(
  'if else for foreach while do switch case catch try finally return new delete throw throws typeof sizeof instanceof await yield function class struct enum interface with using lock in of is as elif match when constructor'.split(' '),
);

const ID = '[A-Za-z_$][\\w$]*';
const MODIFIERS = '(?:(?:public|private|protected|internal|static|final|abstract|virtual|override|async|readonly|declare|synchronized|native|inline|extern|constexpr|unsafe|partial|sealed|open|suspend|operator|get|set|default|export)\\s+)*';

/** Patterns whose first group is a defined name; the `m` flag makes ^ a line start. */
const KEYWORD_DEFINITIONS = new RegExp(`\\b(?:class|interface|struct|enum|trait|protocol|record|union|namespace|object|typedef\\s+struct)\\s+(${ID})`, 'g');

const PATTERNS: Record<Language, RegExp[]> = {
  js: [
    new RegExp(`\\bfunction\\s*\\*?\\s*(${ID})`, 'g'),
    new RegExp(`^\\s*(?:export\\s+)?(?:declare\\s+)?(?:abstract\\s+)?(?:interface|enum|class|namespace|module)\\s+(${ID})`, 'gm'),
    // `type Name = …` and `type Name<T> = …` (not `type Name,` in an import list).
    new RegExp(`^\\s*(?:export\\s+)?(?:declare\\s+)?type\\s+(${ID})\\s*(?:<[^=;]*>)?\\s*=`, 'gm'),
    // Top-level variables, but not `var x = require("x")`: an import defines nothing.
    new RegExp(`^(?:export\\s+(?:default\\s+)?)?(?:declare\\s+)?(?:const|let|var)\\s+(${ID})\\b(?!\\s*=\\s*require\\b)`, 'gm'),
    // Methods in a class body or an object literal: `name(args) {`, `async *name<T>(args): R {`.
    new RegExp(`^[ \\t]+${MODIFIERS}\\*?#?(${ID})\\s*(?:<[^<>()]*>)?\\s*\\([^()]*(?:\\([^()]*\\)[^()]*)*\\)\\s*(?::\\s*[^={};]+)?\\{`, 'gm'),
    // Object literal and class field functions: `name: function (`, `name = (a) =>`, `name: async x =>`.
    new RegExp(`^[ \\t]*${MODIFIERS}(${ID})\\s*[:=]\\s*(?:async\\s+)?(?:function\\b|\\([^()]*\\)\\s*(?::[^=]*)?=>|${ID}\\s*=>)`, 'gm'),
  ],
  python: [/^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)/gm, /^\s*class\s+([A-Za-z_]\w*)/gm, /^([A-Za-z_]\w*)\s*(?::[^=\n]+)?=(?!=)/gm],
  go: [/^func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)/gm, /^\s*type\s+([A-Za-z_]\w*)/gm, /^(?:var|const)\s+([A-Za-z_]\w*)/gm, /^\t([A-Za-z_]\w*)\s+(?:struct|interface)\b/gm],
  rust: [
    /\b(?:fn|struct|enum|trait|type|mod|union|const|static)\s+(?:mut\s+)?([A-Za-z_]\w*)/g,
    /\bimpl(?:<[^>]*>)?\s+(?:[\w:]+(?:<[^>]*>)?\s+for\s+)?(?:[\w]+::)*([A-Za-z_]\w*)/g,
    /\bmacro_rules!\s+([A-Za-z_]\w*)/g,
  ],
  cfamily: [
    // `Type name(args) {` or a declaration ending the line; at least one word before the name.
    new RegExp(`^\\s*${MODIFIERS}(?:[\\w$<>\\[\\],.?*&:]+[ \\t]+)+[*&]*(~?${ID})[ \\t]*\\([^;{}\\n]*\\)[ \\t]*(?:const\\s*)?(?:noexcept\\s*)?(?:override\\s*)?(?:throws\\s+[\\w.,\\s]+)?(?:->\\s*[\\w<>:*&]+\\s*)?(?:\\{.*)?$`, 'gm'),
    /\b(?:fun|func|def|function)\s+(?:<[^>]*>\s*)?(?:[\w.]+\.)?([A-Za-z_$][\w$]*)/g,
    /^\s*(?:(?:public|private|protected|internal|static|final|const|val|var|let)\s+)+([A-Za-z_$][\w$]*)\s*[:=]/gm,
    /^\s*#define\s+([A-Za-z_]\w*)/gm,
  ],
  ruby: [/^\s*def\s+(?:self\.)?([A-Za-z_]\w*[?!]?)/gm, /^\s*(?:class|module)\s+([A-Z]\w*)/gm, /^\s*([A-Z][A-Z0-9_]*)\s*=/gm],
};

/** JavaScript assignments of functions to names or properties, chained or not: `res.contentType = res.type = function contentType(type) {`. */
const ASSIGNED_FUNCTION = new RegExp(`^\\s*((?:(?:${ID}\\.)*${ID}\\s*=\\s*)+)(?:async\\s+)?(?:function\\b|\\([^()]*\\)\\s*(?::[^=]*)?=>|${ID}\\s*=>)`, 'gm');
/** Go methods: `func (r *Type) Name(`. */
const GO_METHOD = /^func\s+\(\s*\w+\s+\*?(\w+)[^)]*\)\s*([A-Za-z_]\w*)/gm;
/** C++ out-of-class definitions: `Type Class::method(`. */
const QUALIFIED_METHOD = /(\w+)::(~?[A-Za-z_]\w*)\s*\(/g;
/** A class-like block opening, to name methods `Class.method` as well (group 1: indent, 2: name). */
const CLASS_LINE = new RegExp(`^([ \\t]*)(?:export\\s+)?(?:default\\s+)?${MODIFIERS}(?:class|struct|interface|trait|impl|object)\\s+(${ID})`);

/** The language a path's extension names, or undefined for text that defines nothing (Markdown, JSON …). */
function languageOf(path: string): Language | undefined {
  const dot = path.lastIndexOf('.');
  return dot < 0 ? undefined : LANGUAGE_BY_EXTENSION[path.slice(dot + 1).toLowerCase()];
}

/**
 * The names `text` (the contents of `path`) defines, each once, in the order found. Members
 * assigned to a property or defined in a class are given both ways: `contentType` and
 * `res.contentType`, `sample` and `Sampler.sample`.
 */
export function extractDefinitions(path: string, text: string): string[] {
  const language = languageOf(path);
  if (language === undefined) return [];
  const names = new Set<string>();
  const add = (name: string | undefined): void => {
    if (name === undefined || name.length < 2 || NOT_NAMES.has(name)) return;
    names.add(name);
  };
  for (const pattern of [KEYWORD_DEFINITIONS, ...PATTERNS[language]]) {
    for (const match of text.matchAll(pattern)) add(match[1]);
  }
  if (language === 'js') {
    for (const match of text.matchAll(ASSIGNED_FUNCTION)) {
      for (const target of match[1]!.split('=')) {
        const dotted = target.trim();
        if (dotted === '' || dotted.startsWith('module.exports')) continue;
        add(dotted.slice(dotted.lastIndexOf('.') + 1));
        if (dotted.includes('.') && !dotted.startsWith('exports.')) add(dotted.replace(/\.prototype\./, '.'));
      }
    }
  }
  if (language === 'go') {
    for (const match of text.matchAll(GO_METHOD)) add(`${match[1]}.${match[2]}`);
  }
  if (language === 'cfamily') {
    for (const match of text.matchAll(QUALIFIED_METHOD)) {
      add(match[2]);
      if (!NOT_NAMES.has(match[2]!)) add(`${match[1]}.${match[2]}`);
    }
  }
  for (const [owner, member] of classMembers(text, names)) add(`${owner}.${member}`);
  return [...names];
}

/**
 * (class, member) for every line indented inside a class-like block that starts with a name
 * already found as a definition: the methods and fields of classes, structs and impls.
 */
function classMembers(text: string, names: ReadonlySet<string>): [string, string][] {
  const members: [string, string][] = [];
  const open: { indent: number; name: string }[] = [];
  for (const line of text.split('\n')) {
    const indent = line.length - line.trimStart().length;
    if (line.trim() === '') continue;
    while (open.length > 0 && indent <= open[open.length - 1]!.indent && !/^\s*[}\])]/.test(line)) open.pop();
    const owner = open[open.length - 1];
    const cls = CLASS_LINE.exec(line);
    if (cls) {
      open.push({ indent: cls[1]!.length, name: cls[2]! });
      continue;
    }
    if (owner === undefined) continue;
    // A method's name is the word before its parameters (`public Response contentType(`), unless an `=` comes first (a field).
    const call = /^([^=(]*?)([A-Za-z_$][\w$]*)\s*(?:<[^<>()]*>)?\s*\(/.exec(line);
    const member = call ? call[2] : /^\s*(?:(?:public|private|protected|internal|static|final|abstract|virtual|override|async|readonly|get|set|pub(?:\([^)]*\))?|fn|def|func|fun)\s+)*\*?#?([A-Za-z_$][\w$]*)/.exec(line)?.[1];
    if (member !== undefined && names.has(member) && member !== owner.name) members.push([owner.name, member]);
  }
  return members;
}

/** The form names are compared in: lower case, letters and digits only (`Content-Type`, `content_type` and `contentType` agree). */
export function definitionKey(name: string): string {
  return name.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
}
