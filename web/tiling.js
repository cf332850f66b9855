// Deblurring a photo of any size with a fixed-size model: the tile grid,
// reflection padding, blending weights and pixel conversions.
//
// This is the browser twin of export/android_reference.py (itself the twin of
// the Android sample's Deblurrer.kt), operation for operation in float32:
// every arithmetic result goes through Math.fround, and a double-precision
// +, -, * or / of two float32 values rounded once to float32 equals the
// float32 operation, so the page computes bit for bit what the Python
// reference computes around the model. Only the model's own output can differ
// (wasm XNNPACK against native XNNPACK). Change the three files together.
//
// Contract: RGBA uint8 pixels in, RGBA uint8 pixels out, alpha unchanged; the
// model sees float32 NHWC RGB tiles in [-1, 1] (`c * (2 / 255) - 1`) of its
// fixed input size; its [-1, 1] output maps back with
// `floor((v + 1) * 127.5 + 0.5)` clamped to 0..255.

const f32 = Math.fround;
const SCALE = f32(2 / 255);

/** Default overlap between neighbouring tiles, in pixels (as on Android). */
export const DEFAULT_OVERLAP = 32;

/**
 * Origins of tiles of side `tile` overlapping by `overlap` along a side of
 * `size`; the last tile is flush with the end (keras_deblur.inference.tile_starts).
 */
export function tileStarts(size, tile, overlap) {
  if (size <= tile) return [0];
  const starts = [];
  for (let start = 0; start < size - tile; start += tile - overlap) starts.push(start);
  starts.push(size - tile);
  return starts;
}

/** Blending weights of a tile side: rise over `overlap` pixels at each end, never 0. */
export function blendRamp(length, overlap) {
  const ramp = new Float32Array(length).fill(1);
  const rise = Math.min(overlap, Math.floor(length / 2));
  for (let i = 0; i < rise; i++) {
    const edge = f32((i + 0.5) / rise);
    ramp[i] = edge;
    ramp[length - 1 - i] = edge;
  }
  return ramp;
}

/**
 * Mirrors an index into [0, size) without repeating the edge pixel; periodic,
 * so pads longer than the side work too (numpy's "reflect").
 */
export function reflectIndex(index, size) {
  if (size === 1) return 0;
  const period = 2 * (size - 1);
  const folded = ((index % period) + period) % period;
  return folded < size ? folded : period - folded;
}

/** A model-range float32 value -> 0..255, rounding halves up. */
export function toChannel(value) {
  const scaled = f32(f32(f32(value + 1) * 127.5) + 0.5);
  return Math.min(255, Math.max(0, Math.floor(scaled)));
}

/** The largest overlap the blending allows for a tile of this size (< half the shorter side). */
export function overlapFor(tileHeight, tileWidth, overlap = DEFAULT_OVERLAP) {
  return Math.max(0, Math.min(overlap, Math.ceil(Math.min(tileHeight, tileWidth) / 2) - 1));
}

/** Number of model runs `deblurPixels` makes for a `width` x `height` photo. */
export function countTiles(width, height, tileHeight, tileWidth, overlap) {
  return (
    tileStarts(height, tileHeight, overlap).length * tileStarts(width, tileWidth, overlap).length
  );
}

/**
 * Deblurs RGBA pixels tile by tile.
 *
 * @param {Uint8ClampedArray} rgba Input pixels, width * height * 4.
 * @param {number} width Photo width (any size >= 1).
 * @param {number} height Photo height.
 * @param {{tileHeight: number, tileWidth: number,
 *          run: (input: Float32Array) => Promise<Float32Array>}} model
 *     The model's fixed input size and a function running one float32
 *     [1, tileHeight, tileWidth, 3] tile in [-1, 1] to the same shape.
 * @param {number} overlap Tile overlap in pixels, < half the shorter tile side.
 * @param {(done: number, total: number) => (void|Promise<void>)} onTile Called
 *     after each tile and awaited (the page yields to repaint its progress bar).
 * @return {Promise<Uint8ClampedArray>} Output pixels, same size, alpha unchanged.
 */
export async function deblurPixels(rgba, width, height, model, overlap, onTile = () => {}) {
  const {tileHeight, tileWidth} = model;
  if (!(overlap >= 0 && overlap < Math.min(tileHeight, tileWidth) / 2)) {
    throw new Error(`overlap must be in [0, tile / 2); got ${overlap}`);
  }
  const total = new Float32Array(width * height * 3);
  const weights = new Float32Array(width * height);
  const input = new Float32Array(tileHeight * tileWidth * 3);
  const tops = tileStarts(height, tileHeight, overlap);
  const lefts = tileStarts(width, tileWidth, overlap);
  let done = 0;
  for (const top of tops) {
    for (const left of lefts) {
      const rows = Math.min(tileHeight, height - top);
      const cols = Math.min(tileWidth, width - left);
      // A side shorter than the tile is reflect-padded up to it.
      for (let y = 0; y < tileHeight; y++) {
        const sourceRow = (top + reflectIndex(y, rows)) * width;
        for (let x = 0; x < tileWidth; x++) {
          const source = (sourceRow + left + reflectIndex(x, cols)) * 4;
          const target = (y * tileWidth + x) * 3;
          for (let c = 0; c < 3; c++) input[target + c] = f32(f32(rgba[source + c] * SCALE) - 1);
        }
      }
      const output = await model.run(input);
      const rampY = blendRamp(rows, overlap);
      const rampX = blendRamp(cols, overlap);
      for (let y = 0; y < rows; y++) {
        for (let x = 0; x < cols; x++) {
          const weight = f32(rampY[y] * rampX[x]);
          const pixel = (top + y) * width + left + x;
          const tilePixel = (y * tileWidth + x) * 3;
          for (let c = 0; c < 3; c++) {
            total[pixel * 3 + c] = f32(total[pixel * 3 + c] + f32(output[tilePixel + c] * weight));
          }
          weights[pixel] = f32(weights[pixel] + weight);
        }
      }
      await onTile(++done, tops.length * lefts.length);
    }
  }
  const result = new Uint8ClampedArray(width * height * 4);
  for (let pixel = 0; pixel < width * height; pixel++) {
    for (let c = 0; c < 3; c++) {
      result[pixel * 4 + c] = toChannel(f32(total[pixel * 3 + c] / weights[pixel]));
    }
    result[pixel * 4 + 3] = rgba[pixel * 4 + 3];
  }
  return result;
}
