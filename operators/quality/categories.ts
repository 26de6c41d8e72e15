/**
 * Bug categories (ARCHITECTURE.md §7): Scale-SWE's ten bug types (arXiv 2602.09892, the bug-type distribution
 * figure: API Mismatch, Logic Error, Input/Boundary, Constructor, Import Error, State Sync, Mutability, Spec
 * Violation, I/O Resource, Security) plus Feature for changes that add capability rather than fix behaviour.
 *
 * The paper names the types but publishes no rules, so the rule path here is ours: keyword evidence from the
 * statement/PR text (weight 1 per distinct cue) and structural evidence from the gold patch (weight 2 per cue).
 * The highest score wins; ties go to the more specific type (order of {@link CATEGORIES} below, Logic Error last);
 * no cue at all → Logic Error, the paper's and SWE-bench Verified's most common type. Feature wins when the text
 * reads as a request for new capability (incl. Conventional Commits `feat:`), the patch mostly adds (≤ 40 % of changed
 * lines removed), and no bug cue outscores the feature cues by 2. With an LLM, {@link classifyWithLlm} asks the classifier agent (prompts/classifier.vN.md) and falls
 * back to the rules when the answer is not one of the names.
 */
import { parseDiff, type FileDiff } from '../pr/patch.js';
import type { LlmClient } from '../llm/client.js';
import { renderPrompt } from '../llm/prompts.js';

/** In tie-break priority order (most specific first). */
export const BUG_TYPES = [
  'Security',
  'Import Error',
  'Constructor',
  'Mutability',
  'I/O Resource',
  'State Sync',
  'Spec Violation',
  'API Mismatch',
  'Input/Boundary',
  'Logic Error',
] as const;
/** One of Scale-SWE's ten bug types. */
export type BugType = (typeof BUG_TYPES)[number];
/** A Statement.category value. */
export type Category = BugType | 'Feature';
/** All eleven categories: the ten bug types then Feature. */
export const CATEGORIES: readonly Category[] = [...BUG_TYPES, 'Feature'];

/** One-line definitions, shown to the classifier agent and documenting the rules' intent. */
export const CATEGORY_DEFINITIONS: Record<Category, string> = {
  'API Mismatch': 'a call, signature, parameter, return type or attribute does not match what callers or a dependency expect',
  'Logic Error': 'wrong computation, condition or control flow for ordinary inputs',
  'Input/Boundary': 'mishandled edge inputs: empty, None/null/undefined, zero, negative, NaN, out of range, off-by-one, invalid values',
  Constructor: 'object construction or initialisation is wrong (constructor / __init__ / factory, default fields)',
  'Import Error': 'a module, export or dependency cannot be imported or is imported wrongly (circular, missing, renamed)',
  'State Sync': 'state gets stale or out of sync: caches, invalidation, ordering, concurrency, lifecycle',
  Mutability: 'unintended mutation or aliasing: inputs modified in place, shared mutable defaults, missing copies',
  'Spec Violation': 'behaviour disagrees with a standard, protocol, format or documented contract (RFC, ISO, spec)',
  'I/O Resource': 'files, streams, sockets, encodings, paths or handles are read, written, closed or leaked wrongly',
  Security: 'a vulnerability: injection, XSS, traversal, unsafe deserialisation, secrets, permission checks, ReDoS',
  Feature: 'new capability, option or API rather than a fix of existing behaviour',
};

interface Cue {
  text?: RegExp[];
  patch?: RegExp[];
}

/** Cues per type. Text cues match the statement + PR title/body; patch cues match added/removed lines or file paths. */
const CUES: Record<BugType, Cue> = {
  Security: {
    text: [/\bsecurity\b/i, /\bvulnerab/i, /\bCVE-\d+/i, /\binjection\b/i, /\bXSS\b/, /\bsaniti[sz]/i, /path traversal|directory traversal/i, /\bReDoS\b/i, /\bcredential|\bsecret\b|\bpassword\b/i, /\bCSRF\b|\bSSRF\b/, /\bunsafe\b/i],
    patch: [/\bescape(Html|HTML)?\(|html\.escape|markupsafe|bleach\./, /\bshlex\.quote\b|\bsafe_load\b/, /\bhmac\.compare_digest\b|timingSafeEqual/],
  },
  'Import Error': {
    text: [/\bImportError\b|\bModuleNotFoundError\b/, /cannot import|can't import|circular import|failed to import/i, /Cannot find module|ERR_MODULE_NOT_FOUND|ERR_REQUIRE_ESM|is not exported|does not provide an export/i],
    // Adding an import is part of most fixes; only a patch that is mostly imports is an import fix (see IMPORT_LINE).
    patch: [],
  },
  Constructor: {
    text: [/\bconstructor\b/i, /__init__/, /\binstantiat/i, /\binitiali[sz]/i],
    patch: [/^@@.*\b(def __init__|constructor\s*\()|^[ +-]\s*(def __init__|constructor\s*\()/],
  },
  Mutability: {
    text: [/\bmutat/i, /\bmutable\b/i, /in[- ]place\b/i, /modif(y|ies|ied) (the )?(original|input|argument|caller)/i, /\bside[- ]effect/i, /\baliasing\b|\bshared (default|list|dict|object)/i],
    patch: [/^\+.*(\bcopy\.(deep)?copy\(|\.copy\(\)|structuredClone\(|\[\.\.\.\w+\]|\{\s*\.\.\.\w+\s*\}|Object\.freeze\(|\blist\(\w+\)|\bdict\(\w+\))/],
  },
  'I/O Resource': {
    text: [/\bResourceWarning\b/, /too many open files|\bEMFILE\b|\bfile (handle|descriptor)/i, /\bUnicode(De|En)codeError\b|\bencoding\b/i, /\bnot closed\b|\b(file|handle|socket|descriptor|connection|fd)s? (are |is )?leak|\bleak(s|ing|ed)? (of )?(an? )?(file|handle|socket|descriptor|connection)/i, /\bsocket\b|\bstream\b|\bENOENT\b|\bEACCES\b/i],
    patch: [/^\+.*(\bwith open\(|\.close\(\)|encoding=|\bfinally:|\bfinally \{|\.destroy\(\)|fs\.\w+Sync\()/],
  },
  'State Sync': {
    text: [/\bcache[ds]?\b|\bcaching\b/i, /\bstale\b/i, /out of sync|not (being )?updated|does not update|doesn't update/i, /\brace condition\b|\bconcurren|\bthread[- ]safe|\bdeadlock/i, /\binvalidat/i, /\bstate\b[^.\n]*\bleak|\bleak[^.\n]*\bstate\b|\bacross (requests|calls|instances|runs)\b/i],
    patch: [/^\+.*(\bcache\w*\b|invalidate|\bLock\(\)|\.acquire\(\)|\bmutex\b)/i],
  },
  'Spec Violation': {
    text: [/\bRFC\s?\d+/i, /\bISO[ -]?\d+/i, /\bspec(ification)?\b/i, /\bstandard\b|\bcompliant\b|\bconform/i, /according to the (docs|documentation)|documented behaviou?r/i],
    patch: [],
  },
  'API Mismatch': {
    text: [/unexpected keyword argument|takes \d+ positional arguments?|missing \d+ required positional|got an unexpected/i, /has no attribute|is not a function|is not callable|undefined is not|AttributeError/i, /\bsignature\b|\bdeprecat/i, /\breturn type\b|\bwrong type\b|\btype hint|\btyping\b|\bTypeError\b/i],
    patch: [/^\+.*(\*\*kwargs|\.\.\.args|@overload|\bOptional\[|\bUnion\[)/],
  },
  'Input/Boundary': {
    text: [/\bempty\b/i, /\bNone\b|\bnull\b|\bundefined\b|\bNaN\b/, /\bnegative\b|\bzero\b/i, /\bboundary|\bedge case|corner case|off[- ]by[- ]one/i, /out of (range|bounds)|\bIndexError\b|\boverflow\b|\bRangeError\b/i, /\binvalid (input|value|date|argument)s?\b/i],
    patch: [/^\+.*(\bif not \w+|\bis None\b|=== ?(undefined|null)|== ?null|\bisNaN\(|Number\.isNaN|\blen\(\w+\) ?[<=]=? ?0|\.length ?[<=]=? ?0|\b\w+ ?< ?0\b|<= ?0\b|\bmin\(|\bmax\(|Math\.(min|max)\()/],
  },
  'Logic Error': { text: [], patch: [] },
};

const IMPORT_LINE = /^[+-]\s*(from\s+\S+\s+import\b|import\s+[\w{*]|(const|let|var)\s+[\w{][^=]*=\s*require\(|export\s+(\*|\{[^}]*\})\s+from\b)/;

const FEATURE_TEXT = [/^\s*(add|adds|added|implement|introduce|support|allow|enable|new)\b/im, /^\s*(feat(\([^)]*\))?!?:|(chore|refactor)(\([^)]*\))?:\s*(add|added|implement|introduce|support)\b)/im, /\b(add|added|adds) (a |an )?(new )?[`\w-]+ (method|option|plugin|locale|api|function|parameter|support)\b/i, /\bfeature( request)?\b/i, /\bwould be (nice|great|useful)\b|\bit would help\b/i, /\benhancement\b/i, /\badd (a |an )?(new )?(option|parameter|argument|method|function|flag|support)/i];
const BUG_TEXT = [/\bbug\b/i, /\bfix(es|ed)?\b/i, /\bcrash|\bbroken\b|\bregression\b/i, /\bwrong\b|\bincorrect\b|\bunexpected(ly)?\b/i, /\berror\b|\bexception\b|\btraceback\b|\bthrows?\b|\braises?\b/i, /\binstead of\b|\bshould\b.*\bbut\b/i];

/** The rule result with the per-type scores that decided it (for logs and tests). */
export interface CategoryResult {
  category: Category;
  /** `rules` or `agent` */
  method: 'rules' | 'agent';
  scores: Partial<Record<BugType, number>>;
  model?: string;
  promptVersion?: string;
  tokensIn?: number;
  tokensOut?: number;
  costUsd?: number;
}

function changedLines(files: FileDiff[]): string[] {
  return files.flatMap((f) => [
    ...f.hunks.map((h) => h.header),
    ...f.hunks.flatMap((h) => h.lines.filter((l) => l.type !== ' ').map((l) => `${l.type}${l.text}`)),
  ]);
}

/**
 * Classify by rules. `text` is the statement plus PR title/body; `goldPatch` a unified diff of the code change.
 * Pure; never throws.
 */
export function classifyByRules(text: string, goldPatch: string): CategoryResult {
  const files = parseDiff(goldPatch);
  const lines = changedLines(files);
  const scores: Partial<Record<BugType, number>> = {};
  for (const t of BUG_TYPES) {
    const c = CUES[t];
    let s = 0;
    for (const re of c.text ?? []) if (re.test(text)) s += 1;
    for (const re of c.patch ?? []) if (lines.some((l) => re.test(l))) s += 2;
    if (t === 'Import Error') {
      const changed = lines.filter((l) => /^[+-]\s*\S/.test(l));
      if (changed.length > 0 && changed.filter((l) => IMPORT_LINE.test(l)).length * 2 >= changed.length) s += 2;
    }
    if (s > 0) scores[t] = s;
  }
  const added = files.reduce((n, f) => n + f.additions, 0);
  const removed = files.reduce((n, f) => n + f.deletions, 0);
  const featureText = FEATURE_TEXT.filter((re) => re.test(text)).length;
  const bugText = BUG_TEXT.filter((re) => re.test(text)).length;
  const best = Math.max(0, ...Object.values(scores));
  if (featureText > bugText && removed <= 0.4 * (added + removed) && best < 2 + featureText) {
    return { category: 'Feature', method: 'rules', scores };
  }
  if (best === 0) return { category: 'Logic Error', method: 'rules', scores };
  const category = BUG_TYPES.find((t) => scores[t] === best)!;
  return { category, method: 'rules', scores };
}

/** Parse a classifier answer (`{"category": …}` JSON, or a bare name) into a category, or null. */
export function parseCategory(answer: string): Category | null {
  let name = answer.trim();
  const json = /\{[\s\S]*\}/.exec(name);
  if (json) {
    try {
      const v = JSON.parse(json[0]) as { category?: unknown };
      if (typeof v.category === 'string') name = v.category;
    } catch {
      // not JSON after all: fall through to matching the bare text
    }
  }
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z]/g, '');
  return CATEGORIES.find((c) => norm(c) === norm(name)) ?? null;
}

/**
 * Classify with the classifier agent (one chat call, JSON answer). Falls back to the rules (method `rules`) when
 * the answer names no category; token/cost accounting is returned either way.
 * @throws LlmError from the client (the caller decides whether the stage fails or uses the rules).
 */
export async function classifyWithLlm(llm: LlmClient, text: string, goldPatch: string, signal?: AbortSignal): Promise<CategoryResult> {
  const categories = CATEGORIES.map((c) => `- ${c}: ${CATEGORY_DEFINITIONS[c]}`).join('\n');
  const p = renderPrompt('classifier', { categories, statement: text, patch: goldPatch.slice(0, 30_000) });
  const r = await llm.chat({
    messages: [
      { role: 'system', content: p.system },
      { role: 'user', content: p.user },
    ],
    responseFormat: { type: 'json_object' },
    signal,
  });
  const acct = { model: r.model, promptVersion: p.version, tokensIn: r.tokensIn, tokensOut: r.tokensOut, costUsd: r.costUsd };
  const cat = parseCategory(r.message.content ?? '');
  if (cat) return { category: cat, method: 'agent', scores: {}, ...acct };
  return { ...classifyByRules(text, goldPatch), ...acct };
}
