import { ProtocolError } from '../../src/errors.js';

/** `'ok'`, or the ProtocolError code the promise rejected with (anything else is rethrown). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    return e.code;
  }
}
