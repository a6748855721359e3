/**
 * `npm run bench -w @sotto/protocol`: prints a table, then ONE JSON line of named figures (last
 * line of output). Each section is an exported async function in its own `*.bench-part.ts` file;
 * optional sections are merged when their file exists.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { benchEngine } from './engine.bench-part.js';

type Section = () => Promise<Record<string, number>>;

async function optionalSection(file: string, exportName: string): Promise<Section | undefined> {
  const url = new URL(file, import.meta.url);
  if (!existsSync(fileURLToPath(url))) return undefined;
  const mod = (await import(url.href)) as Record<string, unknown>;
  const fn = mod[exportName];
  return typeof fn === 'function' ? (fn as Section) : undefined;
}

const sections: [string, Section | undefined][] = [
  ['engine', benchEngine],
  ['attachments', await optionalSection('./attachment.bench-part.ts', 'benchAttachments')],
];

const figures: Record<string, number> = {};
for (const [name, run] of sections) {
  if (run === undefined) {
    console.log(`(section ${name} not present, skipped)`);
    continue;
  }
  Object.assign(figures, await run());
}

const rows = Object.entries(figures).map(([figure, value]) => ({
  figure,
  value: Number.isInteger(value) ? value : Number(value.toFixed(value < 10 ? 3 : 1)),
}));
console.table(rows);
console.log(JSON.stringify(Object.fromEntries(rows.map((r) => [r.figure, r.value]))));
