import { decodeDeviceRecord, decodeSignedDeviceRecord, encodeSignedDeviceRecord } from '@sotto/protocol';
import { createWebEngine } from '@sotto/protocol/web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstContact, send, startApp, type AppHarness } from './harness.js';

/**
 * A relay that swaps a contact's identity key (what a reinstall, or a malicious operator, would
 * show): the app holds the message back, warns, and sends only once the user trusts the new
 * keys. The swap is made in the relay's database, as an operator could.
 */
describe('the identity-change warning in the web app', () => {
  let app: AppHarness;

  beforeAll(async () => {
    app = await startApp();
  });
  afterAll(async () => app?.close());

  it('holds a message to a changed identity until alice trusts the new keys', async () => {
    const alice = await app.person('alice');
    const bob = await app.person('bob');
    await firstContact(alice, 'alice', bob, 'bob', 'first');

    // the relay now lists bob's device under another identity key, signed by that key
    const engine = await createWebEngine();
    const other = await engine.generateIdentity();
    const ctx = app.relay.ctx;
    const row = ctx.database.sqlite.prepare("SELECT d.signed_record AS record FROM devices d JOIN accounts a ON a.id = d.account_id WHERE a.username = 'bob'").get() as { record: Buffer };
    const old = decodeDeviceRecord(decodeSignedDeviceRecord(row.record).record);
    // (a new registration id too, as a reinstall has: alice's next send learns the device changed)
    const registrationId = old.registrationId === 1 ? 2 : old.registrationId - 1;
    const swapped = await engine.signDeviceRecord(other.identityKeyPair, { ...old, registrationId, identityKey: other.identityKey });
    await ctx.queue.run(() => {
      ctx.database.sqlite.prepare('UPDATE devices SET signed_record = ?, registration_id = ? WHERE account_id = ? AND device_id = 1')
        .run(Buffer.from(encodeSignedDeviceRecord(swapped)), registrationId, old.accountId);
    });
    ctx.accounts.forgetCachedDevices();

    // alice's next message waits behind a warning; bob gets nothing yet
    await send(alice, 'held back');
    await alice.getByTestId('identity-changed').waitFor({ timeout: 15_000 });
    await bob.waitForTimeout(500);
    expect(await bob.getByTestId('thread').getByText('held back').count()).toBe(0);

    // (once she trusts the new keys, the warning goes; the held message then goes to whatever
    // device holds them, which here is none: nothing more reaches bob)
    await alice.getByRole('button', { name: 'Trust the new keys' }).click();
    await alice.getByTestId('identity-changed').waitFor({ state: 'detached', timeout: 15_000 });
    await bob.waitForTimeout(500);
    expect(await bob.getByTestId('thread').getByText('held back').count()).toBe(0);
  });
});
