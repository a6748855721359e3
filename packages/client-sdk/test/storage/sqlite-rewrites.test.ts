import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { RowCodec } from '../../src/node/sqlite-codec.js';
import { MIGRATIONS } from '../../src/node/sqlite-schema.js';
import { indexPendingText, prepare, target, type Statements } from '../../src/node/sqlite-statements.js';
import { applyBatch } from '../../src/storage/apply.js';
import { StorageBatch } from '../../src/storage/batch.js';
import { direct, group, message } from './fixtures.js';

/**
 * A patch that keeps a message's conversation and time rewrites only its record (and text): an
 * upsert that sets the indexed columns, even to the values they hold, makes SQLite rewrite the
 * message's entries in both thread indexes.
 */
function recordingTarget() {
  const db = new Database(':memory:');
  for (const m of MIGRATIONS) db.exec(m);
  const q = prepare(db);
  const used: string[] = [];
  const spied = new Proxy(q, {
    get(obj, name: string) {
      used.push(name);
      return obj[name as keyof Statements];
    },
  });
  return { db, t: target(spied, new RowCodec()), used };
}

describe('SQLite message rewrites', () => {
  it('updates only record and text when conversation and time are kept, and upserts otherwise', () => {
    const { db, t, used } = recordingTarget();
    const run = (b: StorageBatch) => db.transaction(() => applyBatch(b, t))();
    run(new StorageBatch().putConversation(direct('bob')).putMessage(message('m1', 'd:bob', 10, { text: 'first words' })));
    expect(used).toContain('putMessage');
    expect(used).not.toContain('updateMessage');

    used.length = 0;
    run(new StorageBatch().patchMessage('m1', { status: { bob: { state: 'delivered', at: 11 } } }).patchMessage('m1', { text: 'edited words', editedAt: 12 }));
    expect(used.filter((n) => n === 'updateMessage' || n === 'putMessage')).toEqual(['updateMessage']);
    db.transaction(() => indexPendingText(prepare(db)))();
    const fts = db.prepare("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'edited'").all();
    expect(fts).toHaveLength(1);
    expect(db.prepare("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'first'").all()).toHaveLength(0);

    used.length = 0;
    run(new StorageBatch().putMessage(message('m1', 'd:bob', 20, { text: 'moved in time' })));
    expect(used.filter((n) => n === 'updateMessage' || n === 'putMessage')).toEqual(['putMessage']);
    expect(db.prepare('SELECT sent_at FROM messages WHERE id = ?').get('m1')).toEqual({ sent_at: 20 });
    db.close();
  });

  it('writes a group state row only when the state changed, and reads it back with the record', () => {
    const { db, t, used } = recordingTarget();
    const run = (b: StorageBatch) => db.transaction(() => applyBatch(b, t))();
    const stateWrites = () => used.filter((n) => n === 'putConversationState').length;
    run(new StorageBatch().putConversation(group('ab01')));
    expect(stateWrites()).toBe(1);
    run(new StorageBatch().patchConversation('g:ab01', { title: 'Renamed', lastMessageAt: 5 }).incrementUnread('g:ab01', 1));
    expect(stateWrites()).toBe(1);
    run(new StorageBatch().putConversation({ ...group('ab01'), groupState: new Uint8Array([1, 2, 3]) })); // same bytes
    expect(stateWrites()).toBe(1);
    run(new StorageBatch().putConversation({ ...group('ab01'), groupState: new Uint8Array([4, 5]) }));
    expect(stateWrites()).toBe(2);
    expect(t.getConversation('g:ab01')?.groupState).toEqual(new Uint8Array([4, 5]));
    const { groupState: _, ...rest } = group('ab01');
    run(new StorageBatch().putConversation(rest));
    expect(t.getConversation('g:ab01')?.groupState).toBeUndefined();
    expect(db.prepare('SELECT count(*) FROM conversation_states').pluck().get()).toBe(0);
    db.close();
  });
});
