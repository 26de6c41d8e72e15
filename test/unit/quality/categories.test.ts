import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { classifyByRules, classifyWithLlm, parseCategory, CATEGORIES } from '../../../operators/quality/categories.js';
import { difficultyFromCounts, difficultyOfPatch, difficultyFromPassRate } from '../../../operators/quality/difficulty.js';
import { startChatServer, type ChatServer } from '../../helpers/chat-server.js';
import { createLlmClient } from '../../../operators/llm/client.js';
import { agentLlmSchema } from '../../../operators/llm/config.js';

const fx = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const diff = (path: string, lines: string[], header = '') =>
  `diff --git a/${path} b/${path}\n--- a/${path}\n+++ b/${path}\n@@ -1,${lines.length} +1,${lines.length} @@ ${header}\n${lines.join('\n')}\n`;

describe('categories by rules', () => {
  it('classifies real PRs', () => {
    // more-itertools #1200 and #1193, dayjs #3180: guards for negative/empty/invalid input
    expect(classifyByRules('Raise for negative slice sizes in sliced()', fx('mit-1200-sliced.patch.diff')).category).toBe('Input/Boundary');
    expect(classifyByRules('Handle empty interleave_evenly input', fx('mit-1193-interleave.patch.diff')).category).toBe('Input/Boundary');
    expect(classifyByRules('fix(plugin): timezone plugin prevent RangeError for invalid Day.js values', fx('dayjs-3180-tz.patch.diff')).category).toBe('Input/Boundary');
    // more-itertools #938: new functions
    expect(classifyByRules('Add derangements and distinct_derangements', fx('mit-938-derangements.patch.diff')).category).toBe('Feature');
  });

  it('recognises the other types from text and patch cues', () => {
    const logic = diff('a.py', ['-    return a + b', '+    return a - b'], 'def sub(a, b):');
    expect(classifyByRules('sub() returns the wrong result', logic).category).toBe('Logic Error');
    expect(classifyByRules('ImportError: cannot import name X from pkg', diff('pkg/__init__.py', ['-from .a import X', '+from .b import X'])).category).toBe('Import Error');
    expect(classifyByRules('Config objects built with no args get wrong defaults', diff('c.py', ['+        self.retries = 3'], 'def __init__(self):')).category).toBe('Constructor');
    expect(classifyByRules('sort_items modifies the input list in place', diff('s.py', ['+    items = list(items)'])).category).toBe('Mutability');
    expect(classifyByRules('ResourceWarning: unclosed file when reading config', diff('r.py', ['-    f = open(p)', '+    with open(p) as f:'])).category).toBe('I/O Resource');
    expect(classifyByRules('The cache is stale after set() and get() returns the old value', diff('k.py', ['+        self._cache.pop(key, None)'])).category).toBe('State Sync');
    expect(classifyByRules('Dates are not formatted per RFC 3339 (the spec requires a T separator)', logic).category).toBe('Spec Violation');
    expect(classifyByRules("TypeError: parse() got an unexpected keyword argument 'strict'", diff('p.py', ['+def parse(text, **kwargs):'])).category).toBe('API Mismatch');
    expect(classifyByRules('Path traversal vulnerability in static file serving', diff('s.js', ['+  if (rel.includes("..")) throw new Error("bad")'])).category).toBe('Security');
  });

  it('parses classifier answers', () => {
    expect(parseCategory('{"category": "I/O Resource", "reason": "x"}')).toBe('I/O Resource');
    expect(parseCategory('input/boundary')).toBe('Input/Boundary');
    expect(parseCategory('Something else')).toBeNull();
    expect(CATEGORIES).toHaveLength(11);
  });
});

describe('classifier agent', () => {
  let srv: ChatServer | undefined;
  afterEach(async () => {
    await srv?.close();
  });
  it('uses the model answer, and falls back to rules on nonsense', async () => {
    srv = await startChatServer([
      { content: '{"category": "State Sync", "reason": "cache"}', usage: { prompt_tokens: 300, completion_tokens: 20 } },
      { content: 'not sure', usage: { prompt_tokens: 300, completion_tokens: 5 } },
    ]);
    const llm = createLlmClient('classifier', agentLlmSchema.parse({ baseURL: srv.baseURL, model: 'cls', priceInPerMTok: 1 }));
    const a = await classifyWithLlm(llm, 'Raise for negative slice sizes', fx('mit-1200-sliced.patch.diff'));
    expect(a).toMatchObject({ category: 'State Sync', method: 'agent', tokensIn: 300, promptVersion: 'classifier.v1' });
    expect(srv.requests[0]!.body.response_format).toEqual({ type: 'json_object' });
    expect(String(srv.requests[0]!.body.messages[0]!.content)).toContain('Input/Boundary');
    const b = await classifyWithLlm(llm, 'Raise for negative slice sizes', fx('mit-1200-sliced.patch.diff'));
    expect(b).toMatchObject({ category: 'Input/Boundary', method: 'rules', tokensIn: 300 });
  });
});

describe('difficulty', () => {
  it('levels from files, hunks and lines', () => {
    expect(difficultyOfPatch(fx('mit-1200-sliced.patch.diff'))).toEqual({ files: 1, hunks: 1, lines: 3, level: 'easy' });
    expect(difficultyOfPatch(fx('dayjs-3180-tz.patch.diff'))).toEqual({ files: 1, hunks: 2, lines: 6, level: 'easy' });
    expect(difficultyOfPatch(fx('mit-938-derangements.patch.diff')).level).toBe('medium');
    expect(difficultyFromCounts(4, 4, 20).level).toBe('hard');
    expect(difficultyFromCounts(2, 3, 101).level).toBe('hard');
    expect(difficultyFromCounts(1, 4, 10).level).toBe('medium');
    expect(difficultyOfPatch('').level).toBe('easy');
  });
  it('levels from solver pass rate', () => {
    expect(difficultyFromPassRate(null)).toBeNull();
    expect(difficultyFromPassRate(1)).toBe('easy');
    expect(difficultyFromPassRate(0.34)).toBe('medium');
    expect(difficultyFromPassRate(0)).toBe('hard');
    expect(() => difficultyFromPassRate(2)).toThrow(RangeError);
  });
});
