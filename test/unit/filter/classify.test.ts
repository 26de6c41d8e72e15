import { describe, it, expect } from 'vitest';
import { detectLanguage, detectLicenseText, extractClosingRefs, extractLinkedIssueNumbers, fileKind, isBotAuthor, isPermissiveLicense, isVendoredPath, languageFromManifests } from '../../../operators/pr/classify.js';

describe('fileKind', () => {
  it.each([
    ['src/dayjs/index.js', 'code'], ['more_itertools/more.py', 'code'], ['lib/index.ts', 'code'], ['src/cli.mjs', 'code'],
    ['tests/test_more.py', 'test'], ['more_itertools/tests/helpers.py', 'test'], ['pkg/test_utils.py', 'test'], ['pkg/utils_test.py', 'test'], ['conftest.py', 'test'],
    ['src/__tests__/parse.js', 'test'], ['src/parse.test.ts', 'test'], ['src/parse.spec.jsx', 'test'], ['test/plugin/utc.test.js', 'test'], ['test/fixtures/a.json', 'test'],
    ['README.md', 'docs'], ['docs/usage.rst', 'docs'], ['CHANGELOG.md', 'docs'], ['docs/conf.py', 'docs'], ['docs/en/API.md', 'docs'],
    ['package.json', 'config'], ['package-lock.json', 'config'], ['yarn.lock', 'config'], ['pyproject.toml', 'config'], ['setup.cfg', 'config'], ['tox.ini', 'config'],
    ['.github/workflows/ci.yml', 'config'], ['.eslintrc.json', 'config'], ['.eslintrc', 'config'], ['tsconfig.build.json', 'config'], ['requirements-dev.txt', 'config'], ['setup.py', 'config'],
    ['src/locale/fr.json', 'other'], ['examples/pizza', 'docs'], ['examples/basic.py', 'docs'], ['assets/logo.png', 'other'], ['native/helper.c', 'code'],
  ])('%s → %s', (p, kind) => {
    expect(fileKind(p)).toBe(kind);
  });
});

describe('isVendoredPath', () => {
  it.each([
    ['node_modules/lodash/index.js', true], ['vendor/jquery.js', true], ['dist/dayjs.min.js', true], ['dist/index.js', true], ['static/app.min.css', true],
    ['src/index.js', false], ['lib/build.py', false],
  ])('%s → %s', (p, v) => expect(isVendoredPath(p)).toBe(v));
});

describe('detectLanguage', () => {
  const f = (path: string, kind: string, n = 10) => ({ path, kind, additions: n, deletions: 0 });
  it('by changed lines in code and test files', () => {
    expect(detectLanguage([f('a.py', 'code'), f('tests/test_a.py', 'test')])).toBe('python');
    expect(detectLanguage([f('src/a.js', 'code'), f('types/index.d.ts', 'code', 2)])).toBe('javascript');
    expect(detectLanguage([f('src/a.ts', 'code')])).toBe('typescript');
    expect(detectLanguage([f('src/main.go', 'code')])).toBe('other');
  });
  it('a JS change in a TypeScript repository with TS changes is typescript', () => {
    expect(detectLanguage([f('src/a.js', 'code', 20), f('src/b.ts', 'code', 5)], ['tsconfig.json', 'package.json'])).toBe('typescript');
  });
  it('manifests decide when no code changed', () => {
    expect(languageFromManifests(['setup.py', 'README.md'])).toBe('python');
    expect(languageFromManifests(['package.json'])).toBe('javascript');
    expect(detectLanguage([f('README.md', 'docs')], ['pyproject.toml'])).toBe('python');
  });
});

describe('isBotAuthor', () => {
  it.each([
    ['dependabot[bot]', null, true], ['renovate[bot]', null, true], ['greenkeeperio-bot', null, true], ['renovate', null, true], ['pyup-bot', null, true],
    ['someone', 'Bot', true], ['jacquev6', 'User', false], ['botond', 'User', false],
  ])('%s (%s) → %s', (login, type, bot) => expect(isBotAuthor(login, type)).toBe(bot));
  it('by noreply e-mail', () => expect(isBotAuthor('Dependabot', null, '49699333+dependabot[bot]@users.noreply.github.com')).toBe(true));
});

describe('closing keywords (GitHub docs: close/closes/closed/fix/fixes/fixed/resolve/resolves/resolved)', () => {
  it('finds every keyword form, case-insensitive, with optional colon', () => {
    const text = 'Fixes #12. Also closes: #13 and RESOLVED #14, fix #15; close #16, closed #17, fixed #18, resolve #19 resolves #20';
    expect(extractLinkedIssueNumbers(text)).toEqual([12, 13, 14, 15, 16, 17, 18, 19, 20]);
  });
  it('cross-repository references and URLs', () => {
    expect(extractClosingRefs('fixes octo/other#3 and closes https://github.com/acme/lib/issues/9', 'acme/lib')).toEqual([{ number: 3, repo: 'octo/other' }, { number: 9, repo: null }]);
    expect(extractLinkedIssueNumbers('fixes octo/other#3', 'acme/lib')).toEqual([]);
  });
  it('ignores mentions without a keyword, keywords inside words, and code blocks', () => {
    expect(extractLinkedIssueNumbers('See #5, prefix #6, bugfixes #7\n```\nfixes #8\n```')).toEqual([]);
  });
});

describe('licences', () => {
  it('permissive SPDX ids, unknown → null, copyleft → false', () => {
    for (const id of ['MIT', 'Apache-2.0', 'BSD-2-Clause', 'BSD-3-Clause', 'ISC', '0BSD', 'Unlicense', 'PSF-2.0', 'mit']) expect(isPermissiveLicense(id)).toBe(true);
    for (const id of [null, '', 'NOASSERTION', 'other']) expect(isPermissiveLicense(id)).toBeNull();
    for (const id of ['GPL-3.0', 'AGPL-3.0', 'LGPL-3.0', 'MPL-2.0']) expect(isPermissiveLicense(id)).toBe(false);
    expect(isPermissiveLicense('MIT OR GPL-3.0')).toBe(true);
  });
  it('detects standard licence texts', () => {
    expect(detectLicenseText('Permission is hereby granted, free of charge, to any person obtaining a copy of this software')).toBe('MIT');
    expect(detectLicenseText('Apache License\n  Version 2.0, January 2004')).toBe('Apache-2.0');
    expect(detectLicenseText('                                 Apache License, Version 2.0')).toBe('Apache-2.0');
    expect(detectLicenseText('Redistribution and use in source and binary forms ... Neither the name of the copyright holder')).toBe('BSD-3-Clause');
    expect(detectLicenseText('GNU GENERAL PUBLIC LICENSE\n Version 3, 29 June 2007')).toBe('GPL-3.0');
  });
});
