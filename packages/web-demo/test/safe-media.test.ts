/**
 * Received media becomes a blob URL of this app's origin: only raster images, video and audio keep
 * the type the sender gave; a document type (HTML, SVG, XML) becomes opaque bytes, so opening the
 * blob in a tab cannot run the sender's script next to the account's keys.
 */
import { describe, expect, it } from 'vitest';
import { safeMediaType } from '../src/shared.js';

describe('safeMediaType', () => {
  it('keeps raster images, video and audio', () => {
    for (const type of ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'video/mp4', 'video/webm', 'audio/ogg', 'audio/webm;codecs=opus', 'IMAGE/PNG']) {
      expect(safeMediaType(type)).toBe(type.toLowerCase());
    }
  });

  it('turns anything a browser would run or render as a document into opaque bytes', () => {
    for (const type of ['text/html', 'image/svg+xml', 'application/xhtml+xml', 'text/xml', 'application/javascript', 'image/svg+xml;charset=utf-8', 'video/../text/html', 'text/html;image/png', '', undefined, 'image/', 'audio/x+xml']) {
      expect(safeMediaType(type)).toBe('application/octet-stream');
    }
  });
});
