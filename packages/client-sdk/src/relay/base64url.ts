/** Unpadded base64url (the relay API's encoding for binary JSON fields) lives in the protocol package. */
export { fromBase64Url, toBase64Url } from '@sotto/protocol';
