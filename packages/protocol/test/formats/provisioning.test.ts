import {
  encodeProvisionMessage,
  formatLinkCode,
  generateProvisioningKeyPair,
  openProvisionMessage,
  parseLinkCode,
  sealProvisionMessage,
  type ProvisionMessage,
} from '@sotto/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as arb from './arbitraries.js';
import { plain } from './vector-json.js';
import { expectCode } from './expect-error.js';

const message: ProvisionMessage = {
  v: 1,
  accountId: 'alice',
  deviceId: 2,
  linkToken: 'token-123',
  identityKey: Uint8Array.of(5, ...new Uint8Array(32).fill(9)),
  identityKeyPair: new Uint8Array(69).fill(7),
  createdAt: 1_767_225_605_000,
};

describe('link codes', () => {
  it('round-trip through their text form, whitespace ignored', () => {
    fc.assert(
      fc.property(arb.linkCode, (code) => {
        const text = formatLinkCode(code);
        expect(text.startsWith('sotto-link:')).toBe(true);
        expect(parseLinkCode(`  ${text}\n`)).toStrictEqual(plain(code));
      }),
      { numRuns: 50 },
    );
  });

  it('reject anything that is not a link code with MALFORMED or a field error', () => {
    expectCode(() => parseLinkCode('https://example.com'), 'MALFORMED');
    expectCode(() => parseLinkCode('sotto-link:'), 'MALFORMED');
    expectCode(() => parseLinkCode('sotto-link:!!!!'), 'MALFORMED');
    const code = formatLinkCode({ v: 1, address: new Uint8Array(16), publicKey: new Uint8Array(32) });
    expect(() => parseLinkCode(code.slice(0, -4))).toThrow();
  });
});

describe('provision messages', () => {
  it('open only with the key pair they were sealed to', async () => {
    const keys = await generateProvisioningKeyPair();
    const other = await generateProvisioningKeyPair();
    const sealed = await sealProvisionMessage(keys.publicKey, encodeProvisionMessage(message));
    expect(await openProvisionMessage(keys, sealed)).toStrictEqual(message);
    await expect(openProvisionMessage(other, sealed)).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
  });

  it('reject any altered byte', async () => {
    const keys = await generateProvisioningKeyPair();
    const sealed = await sealProvisionMessage(keys.publicKey, encodeProvisionMessage(message));
    for (const i of [0, 31, 40, sealed.length - 1]) {
      const bad = sealed.slice();
      bad[i]! ^= 1;
      await expect(openProvisionMessage(keys, bad)).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    }
  });

  it('do not carry the plaintext in the sealed bytes', async () => {
    const keys = await generateProvisioningKeyPair();
    const sealed = await sealProvisionMessage(keys.publicKey, encodeProvisionMessage(message));
    const hex = Buffer.from(sealed).toString('hex');
    expect(hex).not.toContain(Buffer.from('token-123').toString('hex'));
    expect(hex).not.toContain(Buffer.from(message.identityKeyPair.subarray(0, 16)).toString('hex'));
  });

  it('refuse a public key of the wrong length', async () => {
    await expect(sealProvisionMessage(new Uint8Array(31), new Uint8Array(1))).rejects.toMatchObject({ code: 'BAD_KEY' });
  });
});
