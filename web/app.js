// The demo page: pick or drop a photo, deblur it with the model, compare,
// download. Also the headless contract the tests drive:
//
//   index.html?model=<url>&image=<url>&autorun=1[&repeat=N][&threads=N]
//
// deblurs the image and sets document.body.dataset.result to JSON
// {"width", "height", "ms", ...} (output size; "ms" the deblurring time, the
// median over `repeat` runs), or document.body.dataset.error to a one-line
// message when anything fails (model or image URL, decoding, runtime, memory).
// dataset.model (JSON: name, tile height and width, threads) says the model
// is compiled and the page waits for a photo.

import {firstLine} from './errors.js';
import {countTiles, deblurPixels, overlapFor} from './tiling.js';

// What `python -m keras_deblur.web` exports the shipped mobile generator to
// (python -m export.tflite --output_dir web/models --input_size 256x256).
const DEFAULT_MODEL = 'models/generator_fp32_256x256.tflite';

const params = new URLSearchParams(location.search);
const element = (id) => document.getElementById(id);

let runtime = null; // the runtime.js module, imported once
let model = null; // {name, generator}
let photo = null; // {rgba, width, height, name}
let downloadUrl = null;
let busy = false; // an action is running

function setStatus(text, isError = false) {
  element('status').textContent = text;
  element('status').classList.toggle('error', isError);
}

function fail(error) {
  const message = firstLine(error);
  delete document.body.dataset.result;
  document.body.dataset.error = message;
  element('progress').hidden = true;
  setStatus(message, true);
}

function updateControls() {
  element('run').disabled = busy || !(model && photo);
  element('image-input').disabled = busy;
  element('model-input').disabled = busy;
}

async function importRuntime() {
  if (!runtime) {
    try {
      // Imported here, not statically, so that a missing install still lets
      // this module run and report it.
      runtime = await import('./runtime.js');
    } catch (error) {
      throw new Error(
        `LiteRT.js is not installed next to the page (run: npm ci --prefix web): ${firstLine(error)}`,
      );
    }
  }
  return runtime;
}

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`${what} ${url}: cannot be fetched (${firstLine(error)})`);
  }
  if (!response.ok) throw new Error(`${what} ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function useModel(bytes, name) {
  setStatus(`Loading ${name}…`);
  const {compileGenerator} = await importRuntime();
  const generator = await compileGenerator(bytes, name, Number(params.get('threads')) || 0);
  // XNNPACK packs the weights on the first run, several times slower than the
  // next ones: done here so that the time shown is the steady-state one.
  await generator.run(new Float32Array(generator.tileHeight * generator.tileWidth * 3));
  if (model) model.generator.delete();
  model = {name, generator};
  const threads = generator.threads === 1 ? '1 thread' : `${generator.threads} threads`;
  element('model-name').textContent =
    `${name.split('/').pop()} (${generator.tileHeight}x${generator.tileWidth} tiles, wasm, ${threads})`;
  document.body.dataset.model = JSON.stringify({
    name,
    height: generator.tileHeight,
    width: generator.tileWidth,
    threads: generator.threads,
  });
  setStatus(photo ? 'Model ready. Press Deblur.' : 'Model ready. Choose or drop a photo.');
}

async function usePhoto(blob, name) {
  let bitmap;
  try {
    // No colour management: the model gets the file's own values, as
    // keras_deblur.data.images.read_image gives them in Python.
    bitmap = await createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
  } catch (error) {
    throw new Error(`image ${name}: cannot be decoded (${firstLine(error)})`);
  }
  const {width, height} = bitmap;
  for (const id of ['before', 'after']) {
    element(id).width = width;
    element(id).height = height;
  }
  const context = element('before').getContext('2d', {willReadFrequently: true});
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  photo = {rgba: context.getImageData(0, 0, width, height).data, width, height, name};
  element('after').getContext('2d').clearRect(0, 0, width, height);
  element('compare').hidden = false;
  element('drop-hint').hidden = true;
  element('download').hidden = true;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function yieldToBrowser() {
  // scheduler.yield is not throttled like setTimeout in background tabs.
  return globalThis.scheduler?.yield ? scheduler.yield() : new Promise((r) => setTimeout(r));
}

async function deblurPhoto() {
  const {generator} = model;
  const {rgba, width, height, name} = photo;
  const overlap = overlapFor(generator.tileHeight, generator.tileWidth);
  const tiles = countTiles(width, height, generator.tileHeight, generator.tileWidth, overlap);
  const repeat = Math.max(1, Number(params.get('repeat')) || 1);
  const progress = element('progress');
  progress.max = tiles;
  progress.value = 0;
  progress.hidden = tiles === 1;
  delete document.body.dataset.result;
  delete document.body.dataset.error;
  let modelTime = 0;
  const timed = {
    tileHeight: generator.tileHeight,
    tileWidth: generator.tileWidth,
    async run(input) {
      const start = performance.now();
      const output = await generator.run(input);
      modelTime += performance.now() - start;
      return output;
    },
  };
  const onTile = async (done) => {
    progress.value = done;
    setStatus(`Deblurring ${width}x${height}: tile ${done} of ${tiles}`);
    if (tiles > 1) await yieldToBrowser();
  };
  setStatus(`Deblurring ${width}x${height}…`);
  const times = [];
  const modelTimes = [];
  let output;
  for (let i = 0; i < repeat; i++) {
    modelTime = 0;
    const start = performance.now();
    output = await deblurPixels(rgba, width, height, timed, overlap, onTile);
    times.push(performance.now() - start);
    modelTimes.push(modelTime);
  }
  element('after').getContext('2d').putImageData(new ImageData(output, width, height), 0, 0);
  const png = await new Promise((resolve) => element('after').toBlob(resolve, 'image/png'));
  if (!png) throw new Error(`output ${width}x${height}: the browser could not encode it as PNG`);
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(png);
  const stem = name.split('/').pop().replace(/\.[^.]*$/, '') || 'photo';
  Object.assign(element('download'), {href: downloadUrl, download: `${stem}_deblurred.png`});
  element('download').hidden = false;
  progress.hidden = true;
  const ms = median(times);
  const tileText = `${tiles} tile${tiles === 1 ? '' : 's'} of ${generator.tileHeight}x${generator.tileWidth}`;
  setStatus(`Deblurred ${width}x${height} in ${ms.toFixed(0)} ms (${tileText}).`);
  document.body.dataset.result = JSON.stringify({
    width,
    height,
    ms: Number(ms.toFixed(2)),
    model_ms: Number(median(modelTimes).toFixed(2)),
    tiles,
    threads: generator.threads,
    repeat,
  });
}

// Each action runs through here, one at a time (a photo or model swapped
// during a run would change what the run writes): a failure is reported in
// one line and the page stays usable.
async function attempt(action) {
  if (busy) return;
  busy = true;
  updateControls();
  try {
    await action();
  } catch (error) {
    fail(error);
  } finally {
    busy = false;
    updateControls();
  }
}

function openPhoto(file) {
  attempt(async () => {
    await usePhoto(file, file.name);
    if (model) await deblurPhoto();
  });
}

function wireControls() {
  element('image-input').addEventListener('change', (event) => {
    const [file] = event.target.files;
    if (file) openPhoto(file);
  });
  element('model-input').addEventListener('change', (event) => {
    const [file] = event.target.files;
    if (file) attempt(async () => useModel(new Uint8Array(await file.arrayBuffer()), file.name));
  });
  element('run').addEventListener('click', () => attempt(deblurPhoto));
  element('slider').addEventListener('input', (event) => {
    element('compare').style.setProperty('--split', `${event.target.value}%`);
  });
  const zone = element('drop-zone');
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const [file] = event.dataTransfer.files;
    if (file) openPhoto(file);
  });
}

async function main() {
  wireControls();
  setStatus('Loading LiteRT.js…');
  const {loadRuntime} = await importRuntime();
  await loadRuntime();
  const modelUrl = params.get('model') || DEFAULT_MODEL;
  let bytes;
  try {
    bytes = await fetchBytes(modelUrl, 'model');
  } catch (error) {
    if (modelUrl !== DEFAULT_MODEL) throw error;
    throw new Error(`${firstLine(error)}; export it: python -m export.tflite --output_dir web/models`);
  }
  await useModel(bytes, modelUrl);
  const imageUrl = params.get('image');
  if (imageUrl) {
    await usePhoto(new Blob([await fetchBytes(imageUrl, 'image')]), imageUrl);
    if (params.get('autorun') === '1') await deblurPhoto();
  }
}

attempt(main);
