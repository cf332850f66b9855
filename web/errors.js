// One-line error messages: the page shows them and the headless contract
// puts them in data-error. LiteRT.js errors carry a wasm stack in their
// message, which this drops.

/** The first non-empty line of an error's message. */
export function firstLine(error) {
  const text = String(error && error.message !== undefined ? error.message : error);
  return text.split('\n').find((line) => line.trim())?.trim() ?? 'unknown error';
}
