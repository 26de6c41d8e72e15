/**
 * Rules that classify what a pull request touches, used by the filter stage and later stages:
 * file kinds by language conventions (Python and JS/TS first), vendored/generated paths, the PR's
 * language, bot authors, issues a PR closes, and whether a licence is permissive. Pure functions, no I/O.
 *
 * Sources of the conventions:
 *  - pytest test discovery (`test_*.py`, `*_test.py`, `conftest.py`, `tests/` dirs) — docs.pytest.org "Conventions for Python test discovery";
 *  - Jest `testMatch` defaults (`__tests__/`, `*.test.[jt]s?(x)`, `*.spec.[jt]s?(x)`), mocha's default `./test` dir, vitest's `include` default;
 *  - GitHub linguist's vendor.yml (node_modules/, vendor/, minified files, dist bundles);
 *  - GitHub docs "Linking a pull request to an issue": closing keywords close, closes, closed, fix, fixes,
 *    fixed, resolve, resolves, resolved, optionally followed by a colon, before `#N`, `owner/repo#N` or an issue URL;
 *  - SPDX identifiers for licences (spdx.org/licenses), as GitHub's licence API reports them.
 */

/** What a changed file is for. */
export type FileKind = 'code' | 'test' | 'docs' | 'config' | 'other';
/** Languages the pipeline builds environments for. */
export type SupportedLanguage = 'python' | 'javascript' | 'typescript';

const PY_EXT = new Set(['.py', '.pyi', '.pyx', '.pxd']);
const JS_EXT = new Set(['.js', '.jsx', '.mjs', '.cjs']);
const TS_EXT = new Set(['.ts', '.tsx', '.mts', '.cts']);
/** Source-code extensions of languages we do not (yet) support, so such changes count as code in another language. */
const OTHER_CODE_EXT = new Set([
  '.c', '.h', '.cc', '.cpp', '.cxx', '.hpp', '.hh', '.m', '.mm', '.go', '.rs', '.java', '.kt', '.kts', '.scala', '.groovy',
  '.rb', '.php', '.cs', '.fs', '.vb', '.swift', '.dart', '.lua', '.pl', '.pm', '.r', '.jl', '.ex', '.exs', '.erl', '.hs',
  '.clj', '.cljs', '.elm', '.ml', '.mli', '.sh', '.bash', '.zsh', '.ps1', '.coffee', '.vue', '.svelte', '.sol', '.zig', '.nim', '.f90', '.cu',
]);
const DOC_EXT = new Set(['.md', '.markdown', '.rst', '.txt', '.adoc', '.asciidoc', '.rdoc', '.textile', '.org']);
const DOC_NAMES = /^(readme|changelog|changes|history|news|authors|contributors|contributing|code_of_conduct|license|licence|copying|notice|security|support|maintainers|releasing|upgrading|migration)(\.[a-z0-9]+)?$/i;
const CONFIG_NAMES = new Set([
  'package.json', 'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', 'bun.lockb', 'bun.lock',
  '.npmrc', '.npmignore', '.nvmrc', '.node-version', '.yarnrc', '.yarnrc.yml', 'lerna.json', 'nx.json', 'turbo.json',
  'tsconfig.json', 'jsconfig.json', 'babel.config.js', 'babel.config.json', '.babelrc', '.babelrc.js', '.browserslistrc',
  '.eslintrc', '.eslintrc.js', '.eslintrc.cjs', '.eslintrc.json', '.eslintrc.yml', '.eslintrc.yaml', '.eslintignore', 'eslint.config.js', 'eslint.config.mjs', 'eslint.config.cjs',
  '.prettierrc', '.prettierrc.js', '.prettierrc.json', '.prettierrc.yml', '.prettierignore', 'prettier.config.js', '.editorconfig', '.gitignore', '.gitattributes', '.gitmodules', '.mailmap',
  'jest.config.js', 'jest.config.ts', 'jest.config.cjs', 'jest.config.mjs', 'vitest.config.ts', 'vitest.config.js', 'vitest.config.mts', 'karma.conf.js', '.mocharc.json', '.mocharc.js', '.mocharc.yml', '.nycrc', '.nycrc.json',
  'rollup.config.js', 'rollup.config.mjs', 'webpack.config.js', 'vite.config.ts', 'vite.config.js', 'esbuild.config.js', '.swcrc', 'commitlint.config.js', '.commitlintrc.json', '.releaserc', '.releaserc.json', 'renovate.json', '.renovaterc', '.huskyrc', 'lint-staged.config.js', '.lintstagedrc',
  'pyproject.toml', 'setup.cfg', 'setup.py', 'tox.ini', 'noxfile.py', 'pytest.ini', '.coveragerc', 'mypy.ini', '.flake8', '.pylintrc', 'pylintrc', 'ruff.toml', '.ruff.toml', '.isort.cfg', '.pre-commit-config.yaml', '.pre-commit-hooks.yaml',
  'requirements.txt', 'poetry.lock', 'pipfile', 'pipfile.lock', 'pdm.lock', 'uv.lock', 'manifest.in', '.readthedocs.yml', '.readthedocs.yaml', 'environment.yml', 'environment.yaml', '.python-version',
  'makefile', 'dockerfile', '.dockerignore', 'docker-compose.yml', 'docker-compose.yaml', 'procfile', '.travis.yml', 'appveyor.yml', '.appveyor.yml', 'codecov.yml', '.codecov.yml', 'azure-pipelines.yml', '.gitlab-ci.yml', 'cirrus.yml', '.cirrus.yml', 'netlify.toml', 'vercel.json', 'sonar-project.properties', 'cargo.toml', 'cargo.lock', 'go.mod', 'go.sum', 'gemfile', 'gemfile.lock',
]);
const LOCKFILES = new Set(['package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb', 'bun.lock', 'poetry.lock', 'pipfile.lock', 'pdm.lock', 'uv.lock', 'cargo.lock', 'go.sum', 'gemfile.lock', 'composer.lock']);
const CONFIG_EXT = new Set(['.toml', '.ini', '.cfg', '.yml', '.yaml', '.lock', '.conf', '.properties', '.editorconfig']);

function ext(p: string): string {
  const base = p.slice(p.lastIndexOf('/') + 1);
  const i = base.lastIndexOf('.');
  return i <= 0 ? '' : base.slice(i).toLowerCase();
}
function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Language of one source file by extension, or null when it is not Python/JS/TS code. `.d.ts` counts as TypeScript. */
export function languageOfPath(p: string): SupportedLanguage | null {
  const e = ext(p);
  if (PY_EXT.has(e)) return 'python';
  if (TS_EXT.has(e)) return 'typescript';
  if (JS_EXT.has(e)) return 'javascript';
  return null;
}

/** Is the path source code in any language we recognise (supported or not)? */
export function isCodePath(p: string): boolean {
  return languageOfPath(p) !== null || OTHER_CODE_EXT.has(ext(p));
}

/**
 * Is the path a test file by pytest / Jest / mocha / vitest conventions? Directory rules: any path
 * segment `test`, `tests`, `__tests__`, `testing`, `spec`, `specs`, `e2e`, `__mocks__`, `fixtures`
 * (fixtures under a test dir are test data). File rules: `test_*.py`, `*_test.py`, `conftest.py`,
 * `*.test.*`, `*.spec.*`, `*_spec.*`, `test.*` (e.g. `test.js` at the root of small packages).
 */
export function isTestPath(p: string): boolean {
  const lower = p.toLowerCase();
  const segs = lower.split('/');
  const base = segs[segs.length - 1]!;
  if (segs.slice(0, -1).some((s) => s === 'test' || s === 'tests' || s === '__tests__' || s === 'testing' || s === 'spec' || s === 'specs' || s === 'e2e' || s === '__mocks__')) return true;
  if (base === 'conftest.py') return true;
  if (/^test_.*\.py$/.test(base) || /_test\.py$/.test(base) || /^tests?\.py$/.test(base)) return true;
  if (/\.(test|spec)\.[cm]?[jt]sx?$/.test(base) || /_spec\.[cm]?[jt]sx?$/.test(base) || /^tests?\.[cm]?[jt]sx?$/.test(base)) return true;
  // Other languages' conventions, so their tests are not mistaken for code (Go, Ruby, Java).
  if (/_test\.go$/.test(base) || /_spec\.rb$/.test(base) || /Test\.java$/.test(basename(p))) return true;
  return false;
}

/** Documentation: docs/doc/examples dirs, markdown/rst/txt files, README/CHANGELOG-style names, man pages. */
export function isDocsPath(p: string): boolean {
  const lower = p.toLowerCase();
  const segs = lower.split('/');
  const base = segs[segs.length - 1]!;
  if (DOC_NAMES.test(base)) return true;
  if (DOC_EXT.has(ext(p)) && base !== 'requirements.txt' && !/^requirements[-_.].*\.txt$/.test(base) && base !== 'cmakelists.txt') return true;
  if (segs.slice(0, -1).some((s) => s === 'docs' || s === 'doc' || s === 'documentation' || s === 'man' || s === 'website' || s === 'site' || s === 'examples' || s === 'example')) {
    // Sphinx conf.py, doc-site JS and example programs illustrate the library; no test pins them.
    return true;
  }
  return false;
}

/** Configuration / build / CI: manifests, lockfiles, linters, CI workflows, dot-config files. */
export function isConfigPath(p: string): boolean {
  const lower = p.toLowerCase();
  const base = basename(lower);
  if (CONFIG_NAMES.has(base)) return true;
  if (/^requirements([-_.].*)?\.(txt|in)$/.test(base)) return true;
  if (lower.startsWith('.github/') || lower.startsWith('.circleci/') || lower.startsWith('.husky/') || lower.startsWith('.vscode/') || lower.startsWith('.devcontainer/') || lower.startsWith('.changeset/')) return true;
  if (/^\.[a-z0-9_-]+rc(\.[a-z]+)?$/.test(base)) return true;
  if (/^(tsconfig|jsconfig)\..*json$/.test(base)) return true;
  if (/\.config\.[cm]?[jt]s$/.test(base)) return true;
  if (CONFIG_EXT.has(ext(p)) && !lower.includes('/test')) return true;
  return false;
}

/** Is the path a generated lockfile (excluded from size limits: it is machine-written)? */
export function isLockfile(p: string): boolean {
  return LOCKFILES.has(basename(p).toLowerCase());
}

/**
 * Vendored or generated paths (GitHub linguist vendor.yml, abridged): node_modules/, vendor(s)/,
 * third_party/, bower_components/, site-packages/, .yarn/releases, minified `*.min.js`/`*.min.css`,
 * source maps, and bundles under `dist/` or `build/` (`*.js`, `*.css`, `*.map`, `*.d.ts`).
 */
export function isVendoredPath(p: string): boolean {
  const lower = p.toLowerCase();
  const segs = lower.split('/');
  const dirs = segs.slice(0, -1);
  const base = segs[segs.length - 1]!;
  if (dirs.some((s) => s === 'node_modules' || s === 'vendor' || s === 'vendors' || s === 'third_party' || s === 'third-party' || s === 'thirdparty' || s === 'bower_components' || s === 'site-packages' || s === 'jspm_packages' || s === '.venv' || s === 'venv')) return true;
  if (lower.startsWith('.yarn/releases/') || lower.startsWith('.yarn/plugins/') || lower.startsWith('.pnp.')) return true;
  if (/[.-]min\.(js|css|mjs)$/.test(base) || /\.(js|css)\.map$/.test(base) || base.endsWith('.map')) return true;
  if (dirs.some((s) => s === 'dist' || s === 'build' || s === 'umd') && /\.(c|m)?js$|\.css$|\.d\.ts$/.test(base)) return true;
  return false;
}

/** Kind of a changed file. Order matters: a test under `docs/` is docs; a `tests/conftest.py` is test; `setup.py` is config. */
export function fileKind(p: string): FileKind {
  if (isDocsPath(p) && !isTestPath(p)) return 'docs';
  // Test data (fixtures, snapshots) under a test dir is part of the test change too.
  if (isTestPath(p)) return 'test';
  if (isConfigPath(p)) return 'config';
  if (isCodePath(p)) return 'code';
  return 'other';
}

/** A file's language-relevant facts, as the language detector needs them. */
export interface LanguageInput {
  path: string;
  /** a {@link FileKind} */
  kind: string;
  additions: number;
  deletions: number;
  vendored?: boolean;
}

/**
 * The PR's language: the supported language with the most changed lines in non-vendored code and test
 * files; ties and PRs without such lines fall back to the repository's manifests
 * (`tsconfig.json` → typescript, `package.json` → javascript, `pyproject.toml`/`setup.py`/`setup.cfg` → python).
 * A JavaScript repo with TypeScript sources is typescript. Returns null when neither says anything,
 * and `other` when the changed code is only in unsupported languages.
 */
export function detectLanguage(files: LanguageInput[], repoFiles?: string[]): SupportedLanguage | 'other' | null {
  const score: Record<SupportedLanguage, number> = { python: 0, javascript: 0, typescript: 0 };
  let otherCode = 0;
  for (const f of files) {
    if (f.vendored || (f.kind !== 'code' && f.kind !== 'test')) continue;
    const lang = languageOfPath(f.path);
    const w = f.additions + f.deletions + 1; // +1: a pure rename still says something
    if (lang) score[lang] += w;
    else if (f.kind === 'code' && isCodePath(f.path)) otherCode += w;
  }
  const manifest = repoFiles ? languageFromManifests(repoFiles) : null;
  const ranked = (Object.entries(score) as [SupportedLanguage, number][]).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  if (ranked.length === 0) return otherCode > 0 ? 'other' : manifest;
  // TS and JS live together in one repository; the repo's manifest decides between them when both changed.
  if (ranked.length > 1 && ranked[0]![1] === ranked[1]![1] && manifest && ranked.some(([l]) => l === manifest)) return manifest;
  const top = ranked[0]![0];
  if (top === 'javascript' && manifest === 'typescript' && score.typescript > 0) return 'typescript';
  return top;
}

/** Repository language from root manifests; null when none of them is present. */
export function languageFromManifests(repoFiles: string[]): SupportedLanguage | null {
  const root = new Set(repoFiles.filter((f) => !f.includes('/')).map((f) => f.toLowerCase()));
  if (root.has('tsconfig.json')) return 'typescript';
  if (root.has('package.json')) return 'javascript';
  if (root.has('pyproject.toml') || root.has('setup.py') || root.has('setup.cfg') || root.has('requirements.txt')) return 'python';
  return null;
}

const BOT_LOGINS = new Set([
  'dependabot', 'dependabot-preview', 'renovate', 'renovate-bot', 'greenkeeper', 'greenkeeperio-bot', 'snyk-bot', 'pyup-bot', 'pyup.io',
  'imgbot', 'allcontributors', 'all-contributors', 'github-actions', 'pre-commit-ci', 'mergify', 'codecov-io', 'deepsource-autofix', 'scala-steward',
  'whitesource-bolt-for-github', 'mend-bolt-for-github', 'semantic-release-bot', 'copilot-swe-agent', 'web-flow',
]);

/**
 * Is the author a bot? GitHub App accounts carry the `[bot]` suffix and `type: "Bot"`; older bots are
 * ordinary accounts with well-known logins (Dependabot, Renovate, Greenkeeper, pyup, ImgBot, …) or
 * noreply commit e-mails of such accounts.
 */
export function isBotAuthor(login: string | null | undefined, type?: string | null, email?: string | null): boolean {
  if (type && type.toLowerCase() === 'bot') return true;
  const l = (login ?? '').toLowerCase().trim();
  if (l.endsWith('[bot]') || l.endsWith('-bot') || l.endsWith('_bot')) return true;
  if (BOT_LOGINS.has(l)) return true;
  const e = (email ?? '').toLowerCase();
  if (/\[bot\]@users\.noreply\.github\.com$/.test(e) || /^(\d+\+)?(dependabot|renovate|github-actions|pre-commit-ci)/.test(e) || /^bot@renovateapp\.com$/.test(e)) return true;
  return false;
}

/** One closing reference found in text. `repo` is set when the reference names another repository. */
export interface ClosingRef {
  number: number;
  repo: string | null;
}

// GitHub docs "Linking a pull request to an issue using a keyword".
const CLOSING_KEYWORDS = 'close|closes|closed|fix|fixes|fixed|resolve|resolves|resolved';
const CLOSING_RE = new RegExp(
  `\\b(?:${CLOSING_KEYWORDS})\\b:?\\s+(?:(?:([A-Za-z0-9_.-]+\\/[A-Za-z0-9_.-]+)#(\\d+))|#(\\d+)|https?:\\/\\/github\\.com\\/([A-Za-z0-9_.-]+\\/[A-Za-z0-9_.-]+)\\/issues\\/(\\d+))`,
  'gi',
);

/**
 * Issues a text closes with GitHub's closing keywords (case-insensitive, optional colon):
 * `fixes #12`, `Closes: owner/repo#3`, `resolves https://github.com/o/r/issues/4`. Several keywords may
 * appear; each reference needs its own keyword (as on GitHub). When `repo` is given, references to that
 * same repository are returned with `repo: null` (local), others keep their repository. Deduplicated, in order.
 */
export function extractClosingRefs(text: string | null | undefined, repo?: string): ClosingRef[] {
  if (!text) return [];
  const out: ClosingRef[] = [];
  const seen = new Set<string>();
  // Fenced code blocks are not prose: `fixes #1` in a pasted log does not link anything on GitHub either.
  const prose = text.replace(/```[\s\S]*?```/g, ' ');
  for (const m of prose.matchAll(CLOSING_RE)) {
    const other = m[1] ?? m[4] ?? null;
    const num = Number(m[2] ?? m[3] ?? m[5]);
    if (!Number.isSafeInteger(num) || num <= 0) continue;
    const r = other && repo && other.toLowerCase() === repo.toLowerCase() ? null : other;
    const key = `${r ?? ''}#${num}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ number: num, repo: r });
  }
  return out;
}

/** Same-repository issue numbers closed by `text` (references to other repositories are dropped). */
export function extractLinkedIssueNumbers(text: string | null | undefined, repo?: string): number[] {
  return extractClosingRefs(text, repo).filter((r) => r.repo === null).map((r) => r.number);
}

/** SPDX ids treated as permissive (no copyleft obligations on derived datasets). */
export const PERMISSIVE_LICENSES = new Set([
  'MIT', 'MIT-0', 'Apache-2.0', 'BSD-2-Clause', 'BSD-3-Clause', 'BSD-3-Clause-Clear', 'BSD-4-Clause', '0BSD', 'ISC', 'Unlicense', 'CC0-1.0',
  'PSF-2.0', 'Python-2.0', 'Zlib', 'BSL-1.0', 'WTFPL', 'X11', 'NCSA', 'UPL-1.0', 'PostgreSQL', 'Artistic-2.0', 'BlueOak-1.0.0', 'MS-PL', 'AFL-3.0', 'ECL-2.0',
]);

/**
 * Is a licence permissive? `true`/`false` for a known SPDX id (or GitHub licence key), `null` when it
 * is unknown (absent, `NOASSERTION`, `other`) — the filter only rejects known non-permissive licences.
 */
export function isPermissiveLicense(spdx: string | null | undefined): boolean | null {
  if (!spdx) return null;
  const s = spdx.trim();
  if (!s || /^(NOASSERTION|NONE|other)$/i.test(s)) return null;
  for (const p of PERMISSIVE_LICENSES) if (p.toLowerCase() === s.toLowerCase()) return true;
  // SPDX expressions: "MIT OR Apache-2.0" is permissive if any branch is; "AND" needs all.
  if (/\s+OR\s+/i.test(s)) return s.split(/\s+OR\s+/i).some((x) => isPermissiveLicense(x.replace(/[()]/g, '')) === true);
  if (/\s+AND\s+/i.test(s)) return s.split(/\s+AND\s+/i).every((x) => isPermissiveLicense(x.replace(/[()]/g, '')) === true);
  return false;
}

/**
 * Which licences the filter lets through (config `filter.licenses`): `permissive` (default: the SPDX ids of
 * {@link PERMISSIVE_LICENSES}), `any` (no licence rule; SWE-bench itself includes GPL and LGPL projects),
 * or a list of SPDX ids (compared case-insensitively, e.g. `["MIT", "GPL-3.0", "LGPL-2.1"]`).
 */
export type LicensePolicy = 'permissive' | 'any' | readonly string[];

/**
 * Does `policy` allow a licence? `true`/`false` for a known SPDX id or expression, `null` when the licence is
 * unknown (absent, `NOASSERTION`, `other`): the filter only rejects what it knows is not allowed. SPDX
 * expressions (SPDX spec v2.3 annex D): `A OR B` is allowed when either is, `A AND B` when both are.
 * A `-only`/`-or-later` suffix (`GPL-3.0-only`) matches its bare id in a list, as GitHub reports either.
 */
export function licenseAllowed(spdx: string | null | undefined, policy: LicensePolicy = 'permissive'): boolean | null {
  if (policy === 'permissive') return isPermissiveLicense(spdx);
  if (!spdx) return null;
  const s = spdx.trim();
  if (!s || /^(NOASSERTION|NONE|other)$/i.test(s)) return null;
  if (policy === 'any') return true;
  const bare = (id: string) => id.toLowerCase().replace(/[()]/g, '').replace(/-(only|or-later)$|\+$/, '');
  const ids = new Set(policy.map(bare));
  if (/\s+OR\s+/i.test(s)) return s.split(/\s+OR\s+/i).some((x) => ids.has(bare(x)));
  if (/\s+AND\s+/i.test(s)) return s.split(/\s+AND\s+/i).every((x) => ids.has(bare(x)));
  return ids.has(bare(s));
}

/**
 * Best-effort SPDX id from a licence file's text (LICENSE, COPYING): recognises the standard texts of
 * MIT, ISC, Apache-2.0, BSD-2/3-Clause, 0BSD, Unlicense, PSF, MPL-2.0, LGPL/GPL/AGPL. null when unsure.
 */
export function detectLicenseText(text: string | null | undefined): string | null {
  if (!text) return null;
  const t = text.replace(/\s+/g, ' ');
  if (/GNU AFFERO GENERAL PUBLIC LICENSE/i.test(t)) return 'AGPL-3.0';
  if (/GNU LESSER GENERAL PUBLIC LICENSE/i.test(t)) return /Version 2\.1/i.test(t) ? 'LGPL-2.1' : 'LGPL-3.0';
  if (/GNU GENERAL PUBLIC LICENSE/i.test(t)) return /Version 2,/i.test(t) ? 'GPL-2.0' : 'GPL-3.0';
  if (/Mozilla Public License,? (Version|v\.?) ?2\.0/i.test(t)) return 'MPL-2.0';
  if (/Apache License,? Version 2\.0/i.test(t)) return 'Apache-2.0';
  if (/This is free and unencumbered software released into the public domain/i.test(t)) return 'Unlicense';
  if (/PYTHON SOFTWARE FOUNDATION LICENSE/i.test(t)) return 'PSF-2.0';
  if (/Permission is hereby granted, free of charge, to any person obtaining a copy/i.test(t)) return 'MIT';
  if (/Permission to use, copy, modify, and\/or distribute this software for any purpose with or without fee is hereby granted/i.test(t)) {
    return /provided that the above copyright notice and this permission notice appear in all copies/i.test(t) ? 'ISC' : '0BSD';
  }
  if (/Redistribution and use in source and binary forms/i.test(t)) {
    if (/advertising materials/i.test(t)) return 'BSD-4-Clause';
    return /Neither the name|endorse or promote/i.test(t) ? 'BSD-3-Clause' : 'BSD-2-Clause';
  }
  return null;
}
