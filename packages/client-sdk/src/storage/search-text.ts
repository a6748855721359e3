/**
 * Word splitting for message search, written to agree with SQLite FTS5's
 * `unicode61 remove_diacritics 2` tokenizer: a word is a run of letters, digits or private-use
 * characters; case and diacritics are folded. Other backends (memory, IndexedDB) use these
 * functions so every backend finds the same messages.
 */

const WORD = /[\p{L}\p{N}\p{Co}]+/gu;
const MARKS = /\p{M}/gu;

/** Case- and diacritic-folded words of `text`, in order. */
export function searchWords(text: string): string[] {
  const folded = text.normalize('NFD').replace(MARKS, '').toLowerCase();
  return folded.match(WORD) ?? [];
}

/** True when every query word is a prefix of some word of `text`. */
export function matchesWords(text: string | undefined, queryWords: readonly string[]): boolean {
  if (text === undefined || queryWords.length === 0) return false;
  const words = searchWords(text);
  return queryWords.every((q) => words.some((w) => w.startsWith(q)));
}

/** An FTS5 MATCH expression: each word as a quoted prefix term, all required. */
export function ftsExpression(queryWords: readonly string[]): string {
  return queryWords.map((w) => `"${w.replaceAll('"', '""')}"*`).join(' AND ');
}
