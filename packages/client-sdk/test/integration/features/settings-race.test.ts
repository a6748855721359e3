/**
 * Both people of a direct chat change its vanish mode and disappearing timer, and the two changes
 * cross on the way (each side's transport holds the other's envelopes until both changed): the
 * later change by its sender's time wins on both sides, so the two never stay apart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SottoClient } from '../../../src/index.js';
import { FaultyTransport } from '../../faults/fault-transport.js';
import { becomeContacts, eventually, newClient, startRelay, type TestRelay } from '../../helpers/harness.js';

describe('chat settings changed on both sides at once', () => {
  let relay: TestRelay;
  let alice: SottoClient;
  let bob: SottoClient;
  const aliceTransport = new FaultyTransport();
  const bobTransport = new FaultyTransport();

  beforeAll(async () => {
    relay = await startRelay();
    alice = await newClient(relay.url, 'race.alice', { webSocket: aliceTransport.factory });
    bob = await newClient(relay.url, 'race.bob', { webSocket: bobTransport.factory });
    await becomeContacts(alice, bob);
  }, 30_000);

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await relay?.close();
  });

  /** Holds what each sends the other, runs `change`, then lets both through and waits until each has the other's last send. */
  async function crossing(change: () => Promise<void>): Promise<void> {
    aliceTransport.holdIf = (e) => e.from?.accountId === bob.accountId;
    bobTransport.holdIf = (e) => e.from?.accountId === alice.accountId;
    await change();
    aliceTransport.release();
    bobTransport.release();
    // what each sends after the release comes after the held changes (one device's envelopes keep their order)
    const fromAlice = await alice.sendText('d:race.bob', 'after, from alice');
    const fromBob = await bob.sendText('d:race.alice', 'after, from bob');
    await eventually(async () => (await bob.message(fromAlice.id)) !== undefined && (await alice.message(fromBob.id)) !== undefined, 10_000, 'both past the changes');
  }

  it('the disappearing timer: the one set later holds on both sides', async () => {
    await crossing(async () => {
      await alice.setDisappearingTimer('d:race.bob', 60_000);
      await new Promise((r) => setTimeout(r, 5));
      await bob.setDisappearingTimer('d:race.alice', 3_600_000);
    });
    expect((await alice.conversation('d:race.bob'))?.expireTimerMs).toBe(3_600_000);
    expect((await bob.conversation('d:race.alice'))?.expireTimerMs).toBe(3_600_000);

    // and the other way round, with the timer turned off last
    await crossing(async () => {
      await bob.setDisappearingTimer('d:race.alice', 86_400_000);
      await new Promise((r) => setTimeout(r, 5));
      await alice.setDisappearingTimer('d:race.bob', 0);
    });
    expect((await alice.conversation('d:race.bob'))?.expireTimerMs).toBeUndefined();
    expect((await bob.conversation('d:race.alice'))?.expireTimerMs).toBeUndefined();
  }, 30_000);

  it('vanish mode: the change made later holds on both sides', async () => {
    await crossing(async () => {
      await bob.setVanishMode('d:race.alice', true);
      await new Promise((r) => setTimeout(r, 5));
      await alice.setVanishMode('d:race.bob', false);
    });
    expect((await alice.conversation('d:race.bob'))?.vanishMode).toBe(false);
    expect((await bob.conversation('d:race.alice'))?.vanishMode).toBe(false);
  }, 30_000);
});
