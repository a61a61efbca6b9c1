/**
 * A fresh app with cloud-defer installed from its packed tarball (what `npm pack` ships, so a file
 * missing from `files` shows up here), its other packages linked from this repository's
 * node_modules so nothing is downloaded.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');
let cached: string | undefined;

/** The app's directory (one per test process); `npm run build` must have run (npm test's pretest does). */
export function freshApp(): string {
  if (cached) return cached;
  const dir = mkdtempSync(path.join(tmpdir(), 'cloud-defer-app-'));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: repoRoot, encoding: 'utf8' })) as Array<{
    filename: string;
  }>;
  const modules = path.join(dir, 'node_modules');
  mkdirSync(modules);
  execFileSync('tar', ['-xzf', path.join(dir, packed[0]!.filename), '-C', modules]);
  renameSync(path.join(modules, 'package'), path.join(modules, 'cloud-defer'));
  const source = path.join(repoRoot, 'node_modules');
  for (const name of readdirSync(source)) {
    if (name === 'cloud-defer' || name.startsWith('.')) continue;
    if (name.startsWith('@')) {
      mkdirSync(path.join(modules, name));
      for (const inner of readdirSync(path.join(source, name))) symlinkSync(path.join(source, name, inner), path.join(modules, name, inner));
    } else {
      symlinkSync(path.join(source, name), path.join(modules, name));
    }
  }
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'fresh-app', private: true }));
  cached = dir;
  return dir;
}

export type Resolution = 'nodenext' | 'bundler';

/** Type-checks `files` (relative to the app) with tsc --strict; returns tsc's output ('' when clean). */
export function typeCheck(app: string, files: string[], resolution: Resolution): string {
  const config = resolution === 'nodenext' ? { module: 'nodenext', moduleResolution: 'nodenext' } : { module: 'esnext', moduleResolution: 'bundler' };
  const tsconfig = `tsconfig.${resolution}.json`;
  writeFileSync(
    path.join(app, tsconfig),
    JSON.stringify({
      compilerOptions: {
        ...config,
        strict: true,
        noEmit: true,
        target: 'es2022',
        types: ['node'],
        skipLibCheck: true,
        allowJs: true,
        checkJs: true,
        esModuleInterop: true,
      },
      files,
    }),
  );
  try {
    execFileSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { cwd: app, encoding: 'utf8' });
    return '';
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}` || String(err);
  }
}
