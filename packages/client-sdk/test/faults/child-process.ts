import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const PKG_DIR = fileURLToPath(new URL('../..', import.meta.url));

/** One JSON line a fault-test child printed. */
export interface ChildLine {
  event: string;
  id?: string;
  count?: number;
}

/**
 * Runs `script` (a child of the fault tests, under tsx) with `args` and hands `onLine` every JSON
 * line it prints; `onLine` returns true to SIGKILL it right there. Resolves with the lines once
 * it died of that SIGKILL; rejects if it exits by itself or is not killed within 25 s.
 * @example
 * const lines = await runUntilKilled(CHILD, [url, dbPath], (line) => line.event === 'stalled');
 */
export function runUntilKilled(script: string, args: readonly string[], onLine: (line: ChildLine) => boolean): Promise<ChildLine[]> {
  const child = spawn(process.execPath, ['--conditions=sotto-source', '--import', 'tsx', script, ...args], { cwd: PKG_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: ChildLine[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child was never killed\n${stderr}`));
    }, 25_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(lines);
      else reject(new Error(`child exited by itself (${code})\n${stderr}`));
    });
    createInterface({ input: child.stdout }).on('line', (text) => {
      let line: ChildLine;
      try {
        line = JSON.parse(text) as ChildLine;
      } catch {
        return; // not a report line
      }
      lines.push(line);
      if (onLine(line)) child.kill('SIGKILL');
    });
  });
}
