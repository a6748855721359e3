/**
 * Randomized delivery schedules: reorder, duplicate, drop-and-resend and restarts must end with
 * every delivered message decrypted exactly once and nothing undecryptable. Receivers decrypt the
 * way the SDK does: on staged stores, committing the changes only on success.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChanges, MemoryStores, ProtocolError, stageStores, type DeviceAddress } from '../../src/index.js';
import { connect, newParty, text, untext, type Party } from './helpers.js';
import { ENGINES } from './engines.js';

for (const engine of ENGINES) {
  const GROUP = '3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a';

  type Op =
    | { t: 'send'; from: 0 | 1 }
    | { t: 'group'; from: 0 | 1 | 2 }
    | { t: 'deliver'; pick: number }
    | { t: 'dup'; pick: number }
    | { t: 'drop'; pick: number }
    | { t: 'restart'; who: 0 | 1 | 2 };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ t: fc.constant('send' as const), from: fc.constantFrom(0 as const, 1 as const) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('group' as const), from: fc.constantFrom(0 as const, 1 as const, 2 as const) }) },
    { weight: 4, arbitrary: fc.record({ t: fc.constant('deliver' as const), pick: fc.nat(1000) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('dup' as const), pick: fc.nat(1000) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('drop' as const), pick: fc.nat(1000) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constantFrom('restart' as const), who: fc.constantFrom(0 as const, 1 as const, 2 as const) }) },
  );

  interface Wire {
    logical: string; // the plaintext, unique per logical message
    from: number;
    to: number;
    kind: 'pair' | 'group';
    type: 'prekey' | 'whisper';
    body: Uint8Array;
  }

  describe(`randomized delivery (${engine.name} engine)`, () => {
    it('ends with every message decrypted exactly once', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40 }), async (ops) => {
          const parties: Party[] = [await newParty(engine, 'alice'), await newParty(engine, 'bob'), await newParty(engine, 'carol')];
          await connect(engine, parties[0]!, parties[1]!);
          for (const s of parties) {
            const skdm = await engine.createSenderKeyDistribution(s.stores, s.address, GROUP);
            for (const r of parties) if (r !== s) await engine.processSenderKeyDistribution(r.stores, s.address, skdm);
          }
          const addr = (i: number): DeviceAddress => parties[i]!.address;
          const pending: Wire[] = [];
          const delivered: Wire[] = [];
          const received = new Map<string, number>(); // `${to}:${logical}` → times decrypted
          const expected = new Set<string>();
          let seq = 0;

          const send = async (from: number, logical: string) => {
            const to = 1 - from;
            const ct = await engine.encrypt(parties[from]!.stores, addr(to), text(logical));
            pending.push({ logical, from, to, kind: 'pair', type: ct.type, body: ct.body });
            expected.add(`${to}:${logical}`);
          };
          const groupSend = async (from: number, logical: string) => {
            const body = await engine.groupEncrypt(parties[from]!.stores, addr(from), GROUP, text(logical));
            for (let to = 0; to < 3; to++) {
              if (to === from) continue;
              pending.push({ logical, from, to, kind: 'group', type: 'whisper', body });
              expected.add(`${to}:${logical}`);
            }
          };
          const receive = async (w: Wire): Promise<string> => {
            const me = parties[w.to]!;
            const staged = stageStores(me.stores);
            const plain =
              w.kind === 'pair'
                ? await engine.decrypt(staged.stores, addr(w.from), w.type, w.body)
                : await engine.groupDecrypt(staged.stores, addr(w.from), w.body);
            await applyChanges(me.stores, staged.changes()); // + plaintext + marker, in the SDK
            return untext(plain);
          };
          const deliver = async (w: Wire) => {
            const got = await receive(w);
            expect(got).toBe(w.logical);
            const key = `${w.to}:${w.logical}`;
            received.set(key, (received.get(key) ?? 0) + 1);
            delivered.push(w);
          };

          for (const op of ops) {
            switch (op.t) {
              case 'send': await send(op.from, `p${seq++}`); break;
              case 'group': await groupSend(op.from, `g${seq++}`); break;
              case 'deliver':
                if (pending.length > 0) await deliver(pending.splice(op.pick % pending.length, 1)[0]!);
                break;
              case 'dup':
                if (delivered.length > 0) {
                  const w = delivered[op.pick % delivered.length]!;
                  const before = parties[w.to]!.stores.serialize();
                  const err = await receive(w).then(() => null, (e: unknown) => e);
                  expect(ProtocolError.is(err, 'DUPLICATE_MESSAGE')).toBe(true);
                  expect(parties[w.to]!.stores.serialize()).toEqual(before);
                }
                break;
              case 'drop':
                if (pending.length > 0) {
                  const w = pending.splice(op.pick % pending.length, 1)[0]!;
                  expected.delete(`${w.to}:${w.logical}`);
                  // The sender resends the same content as a new encryption.
                  const again = `${w.logical}r${seq++}`;
                  if (w.kind === 'pair') await send(w.from, again);
                  else {
                    const body = await engine.groupEncrypt(parties[w.from]!.stores, addr(w.from), GROUP, text(again));
                    pending.push({ ...w, logical: again, body });
                    expected.add(`${w.to}:${again}`);
                  }
                }
                break;
              case 'restart': {
                const p = parties[op.who]!;
                parties[op.who] = { ...p, stores: MemoryStores.deserialize(p.stores.serialize()) };
                break;
              }
            }
          }
          // Flush: the relay eventually delivers everything still queued.
          while (pending.length > 0) await deliver(pending.shift()!);

          expect(new Set(received.keys())).toEqual(expected);
          for (const [key, count] of received) expect(count, key).toBe(1);
          // Sessions still work in both directions afterwards.
          await send(0, 'final-a');
          await send(1, 'final-b');
          for (const w of pending.splice(0)) await deliver(w);
        }),
        { numRuns: 20 },
      );
    });
  });
}
