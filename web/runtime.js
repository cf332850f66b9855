// LiteRT.js behind one small interface: load the runtime once, compile a
// keras-deblur generator, run one float32 tile.
//
// The runtime files come from web/node_modules (npm ci --prefix web, pinned by
// web/package-lock.json), served by the same server as the page: nothing is
// fetched from elsewhere, so the page works offline once installed.

import {loadAndCompile, loadLiteRt, Tensor} from '@litertjs/core';

import {firstLine} from './errors.js';

const WASM_DIR = new URL('./node_modules/@litertjs/core/wasm/', import.meta.url).href;

let runtime = null;

/**
 * Loads the LiteRT.js wasm runtime (once).
 *
 * Threads need a cross-origin-isolated page (COOP/COEP headers, as served by
 * `python -m keras_deblur.web`); a plain static server gets the one-thread
 * build.
 *
 * @return {Promise<{threads: boolean}>}
 */
export function loadRuntime() {
  if (!runtime) {
    const threads = self.crossOriginIsolated === true;
    runtime = loadLiteRt(WASM_DIR, {threads}).then(
      () => ({threads}),
      (error) => {
        runtime = null;
        throw new Error(`LiteRT.js runtime in ${WASM_DIR}: ${firstLine(error)}`);
      },
    );
  }
  return runtime;
}

function describe(details) {
  return `${details.dtype}[${Array.from(details.shape).join(', ')}]`;
}

/**
 * Compiles a `.tflite` generator exported by `python -m export.tflite`.
 *
 * Contract checked here: one float32 input [1, H, W, 3] (NHWC RGB in
 * [-1, 1]) and one output of the same shape, H and W fixed. LiteRT.js 2.5
 * cannot resize inputs, so dynamic-shape exports are refused.
 *
 * @param {Uint8Array} bytes The model file.
 * @param {string} name Shown in error messages (URL or file name).
 * @param {number|undefined} numThreads XNNPACK threads; default: the runtime's.
 * @return {Promise<{tileHeight: number, tileWidth: number, threads: number,
 *     run: (input: Float32Array) => Promise<Float32Array>, delete: () => void}>}
 */
export async function compileGenerator(bytes, name, numThreads) {
  const {threads} = await loadRuntime();
  const options = {accelerator: 'wasm'};
  if (numThreads) options.cpuOptions = {numThreads};
  let compiled;
  try {
    compiled = await loadAndCompile(bytes, options);
  } catch (error) {
    throw new Error(`model ${name}: LiteRT.js cannot load it (${firstLine(error)})`);
  }
  const inputs = compiled.getInputDetails();
  const outputs = compiled.getOutputDetails();
  const shape = inputs.length === 1 ? Array.from(inputs[0].shape) : [];
  const fixedRgb =
    shape.length === 4 && shape[0] === 1 && shape[3] === 3 && shape[1] > 0 && shape[2] > 0;
  if (
    inputs.length !== 1 ||
    outputs.length !== 1 ||
    inputs[0].dtype !== 'float32' ||
    !fixedRgb ||
    describe(outputs[0]) !== describe(inputs[0])
  ) {
    compiled.delete();
    const received = `${inputs.map(describe).join(', ')} -> ${outputs.map(describe).join(', ')}`;
    throw new Error(
      `model ${name}: expected one float32[1, H, W, 3] input and output of a fixed size ` +
        `(python -m export.tflite --input_size HxW, float I/O); got ${received}`,
    );
  }
  const [, tileHeight, tileWidth] = shape;
  return {
    tileHeight,
    tileWidth,
    threads: threads ? numThreads || navigator.hardwareConcurrency : 1,
    async run(input) {
      const tensor = new Tensor(input, shape);
      try {
        const [output] = await compiled.run(tensor);
        try {
          return output.toTypedArray(); // a copy out of the wasm heap
        } finally {
          output.delete();
        }
      } finally {
        tensor.delete();
      }
    },
    delete() {
      compiled.delete();
    },
  };
}
