/**
 * pnpm's version in an environment: the exact `packageManager` version is installed, and pnpm's own version
 * switch is turned off for later shells, so a registry without npm signatures (pnpm/pnpm#13147) cannot fail
 * every pnpm command ("Refusing to run pnpm@X": unjs/ufo#313 and pmndrs/zustand#3560 in a breadth run).
 */
import { describe, expect, it } from 'vitest';
import { detect, type Detection } from '../../../operators/env/detect.js';
import { buildRecipe, pnpmVersion } from '../../../operators/env/recipes.js';

const BASE = 'swe-stream/base-x:1';
const json = (o: unknown) => JSON.stringify(o, null, 2) + '\n';

function recipeOf(pkg: Record<string, unknown>, lock = "lockfileVersion: '9.0'\n") {
  const contents = { 'package.json': json({ name: 'x', scripts: { test: 'vitest run' }, devDependencies: { vitest: '^3.0.0' }, ...pkg }), 'pnpm-lock.yaml': lock };
  const files = [...Object.keys(contents), 'src/index.ts', 'src/index.test.ts'];
  const d = detect({ files, contents });
  if ('reason' in d) throw new Error(`expected a detection: ${d.detail}`);
  return { d: d as Detection, contents, recipe: buildRecipe(d, files, contents, BASE) };
}

describe('pnpm version', () => {
  it('installs the exact packageManager version and turns pnpm\'s own switch off first', () => {
    const { recipe } = recipeOf({ packageManager: 'pnpm@10.28.0+sha512.0123abcd' });
    const cmds = recipe.installCommands;
    const off = cmds.findIndex((c) => c.includes('/etc/profile.d/pnpm-no-switch.sh') && c.includes('pm_on_fail=ignore'));
    const install = cmds.indexOf('npm install -g pnpm@10.28.0');
    expect(off).toBeGreaterThanOrEqual(0);
    expect(install).toBeGreaterThan(off);
    expect(cmds[install + 1]).toBe('pnpm install --frozen-lockfile || pnpm install');
  });

  it('falls back to the major from the lockfile, and to a major the Node version runs', () => {
    const { d, contents } = recipeOf({});
    expect(pnpmVersion(d, contents, 20)).toBe('9');
    const pinned = recipeOf({ packageManager: 'pnpm@9.15.4' });
    expect(pnpmVersion(pinned.d, pinned.contents, 16)).toBe('8'); // pnpm 9 needs Node ≥ 18.12
    expect(pnpmVersion(pinned.d, pinned.contents, 22)).toBe('9.15.4');
  });
});
