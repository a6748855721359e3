import sodium from 'libsodium-wrappers';

/** The libsodium instance, once its WebAssembly module is initialised. */
export async function readySodium(): Promise<typeof sodium> {
  await sodium.ready;
  return sodium;
}
