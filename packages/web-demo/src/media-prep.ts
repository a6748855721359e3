/**
 * Media made ready in the browser before it is encrypted and sent (the seed's media handling):
 * large photos are scaled down and re-encoded (compression before upload), and photos and
 * videos get a tiny inline thumbnail (a frame of the video) that travels inside the encrypted
 * message, so the other side shows a preview at once and the full file on demand (progressive
 * loading). Nothing here leaves the browser unencrypted.
 */

/** The longest side of a photo as sent; larger ones are scaled down. */
export const MAX_PHOTO_PX = 2048;
/** Photos at most this large and this wide are sent as they are. */
const KEEP_BYTES = 1024 * 1024;
/** The longest side of an inline thumbnail, and the SDK's limit for its bytes. */
const THUMB_PX = 64;
const MAX_THUMB_BYTES = 8 * 1024;

export interface PreparedMedia {
  data: Uint8Array;
  contentType: string;
  width?: number;
  height?: number;
  durationMs?: number;
  thumbnail?: Uint8Array;
}

/** A photo (not a GIF: its frames would be lost) scaled to at most {@link MAX_PHOTO_PX}, with a thumbnail. */
export async function preparePhoto(file: Blob): Promise<PreparedMedia> {
  const original = new Uint8Array(await file.arrayBuffer());
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return { data: original, contentType: file.type || 'application/octet-stream' }; // not decodable here: sent as it is
  }
  try {
    const { width, height } = bitmap;
    const thumbnail = await thumbnailOf(bitmap, width, height);
    const scale = Math.min(1, MAX_PHOTO_PX / Math.max(width, height));
    if (scale === 1 && original.byteLength <= KEEP_BYTES) return { data: original, contentType: file.type, width, height, ...thumbnail };
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    const jpeg = await encode(bitmap, w, h, 'image/jpeg', 0.85);
    // a re-encoding that came out larger than the original (a small, already compressed file) is not used
    if (scale === 1 && jpeg.byteLength >= original.byteLength) return { data: original, contentType: file.type, width, height, ...thumbnail };
    return { data: jpeg, contentType: 'image/jpeg', width: w, height: h, ...thumbnail };
  } finally {
    bitmap.close();
  }
}

/** A video as it is, with its size, length and a thumbnail of its first frame (when the browser can play it). */
export async function prepareVideo(file: Blob): Promise<PreparedMedia> {
  const data = new Uint8Array(await file.arrayBuffer());
  const base: PreparedMedia = { data, contentType: file.type || 'application/octet-stream' };
  const url = URL.createObjectURL(file);
  try {
    const video = document.createElement('video');
    video.muted = true;
    video.preload = 'auto';
    video.src = url;
    await within(new Promise<void>((resolve, reject) => {
      video.onloadeddata = () => resolve();
      video.onerror = () => reject(new Error('the video cannot be played here'));
    }), 5_000);
    const { videoWidth: width, videoHeight: height } = video;
    if (width === 0 || height === 0) return base;
    const durationMs = Number.isFinite(video.duration) ? Math.round(video.duration * 1000) : undefined;
    return { ...base, width, height, ...(durationMs !== undefined ? { durationMs } : {}), ...(await thumbnailOf(video, width, height)) };
  } catch {
    return base;
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** A JPEG of at most {@link THUMB_PX} on its longest side, if it fits the SDK's inline limit. */
async function thumbnailOf(source: CanvasImageSource, width: number, height: number): Promise<{ thumbnail?: Uint8Array }> {
  const scale = Math.min(1, THUMB_PX / Math.max(width, height));
  const bytes = await encode(source, Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale)), 'image/jpeg', 0.6);
  return bytes.byteLength <= MAX_THUMB_BYTES ? { thumbnail: bytes } : {};
}

async function encode(source: CanvasImageSource, width: number, height: number, type: string, quality: number): Promise<Uint8Array> {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d')!.drawImage(source, 0, 0, width, height);
  const blob = await new Promise<Blob>((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the browser could not encode the image'))), type, quality));
  return new Uint8Array(await blob.arrayBuffer());
}

/** Bars in a voice note's waveform (the SDK takes up to 256). */
export const WAVEFORM_BARS = 48;

/**
 * A voice note's waveform: the loudness (RMS, 0..255 on a square-root scale) of {@link
 * WAVEFORM_BARS} equal slices of the recording. Undefined when the browser cannot decode it.
 */
export async function waveformOf(audio: Uint8Array): Promise<Uint8Array | undefined> {
  const context = new OfflineAudioContext(1, 1, 8000);
  let decoded: AudioBuffer;
  try {
    decoded = await context.decodeAudioData(audio.slice().buffer);
  } catch {
    return undefined;
  }
  const samples = decoded.getChannelData(0);
  if (samples.length === 0) return undefined;
  const levels = new Uint8Array(WAVEFORM_BARS);
  const slice = samples.length / WAVEFORM_BARS;
  for (let bar = 0; bar < WAVEFORM_BARS; bar++) {
    const from = Math.floor(bar * slice);
    const to = Math.max(from + 1, Math.floor((bar + 1) * slice));
    let sum = 0;
    for (let i = from; i < to && i < samples.length; i++) sum += samples[i]! * samples[i]!;
    const rms = Math.sqrt(sum / (to - from));
    levels[bar] = Math.min(255, Math.round(Math.sqrt(rms) * 255));
  }
  return levels;
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms))]);
}
