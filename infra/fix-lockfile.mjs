// Makes package-lock.json acceptable to `npm ci` when it was written against a registry that
// serves only this platform's binary packages (as on the build machines here): npm then leaves
// out the other platforms' optional packages (@rollup/rollup-darwin-arm64, @chdb/lib-darwin-x64, …),
// and `npm ci` refuses the lockfile as "not in sync" ("Missing: … from lock file").
// This adds each missing optional dependency as a version-only entry; npm skips it on a platform
// it does not fit and fetches it by version on one it does. Idempotent; `npm install` keeps them.
// Usage: node infra/fix-lockfile.mjs [package-lock.json]
import fs from 'node:fs';

const file = process.argv[2] ?? 'package-lock.json';
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const pkgs = lock.packages;

// Node's resolution: the nearest node_modules/<name> from the dependent's folder up to the root.
function resolves(from, name) {
  for (let dir = from; ; ) {
    if (pkgs[`${dir ? `${dir}/` : ''}node_modules/${name}`]) return true;
    if (!dir) return false;
    const i = dir.lastIndexOf('/node_modules/');
    dir = i >= 0 ? dir.slice(0, i) : '';
  }
}

let added = 0;
for (const [loc, meta] of Object.entries(pkgs)) {
  for (const [name, version] of Object.entries(meta.optionalDependencies ?? {})) {
    if (resolves(loc, name)) continue;
    // A lockfile entry needs an exact version; platform packages are pinned exactly in practice.
    if (!/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(version)) { console.warn(`skipped ${name}@${version} (not exact)`); continue; }
    pkgs[`node_modules/${name}`] = { version, optional: true, ...(meta.dev ? { dev: true } : {}) };
    added++;
  }
}
if (added) fs.writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`${file}: ${added} missing optional package entr${added === 1 ? 'y' : 'ies'} added`);
