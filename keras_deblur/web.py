"""Serve the in-browser demo (`web/`) locally, with LiteRT.js threads enabled.

    npm ci --prefix web                     # once: LiteRT.js, pinned by web/package-lock.json
    python -m keras_deblur.web              # then open http://127.0.0.1:8000/
    python -m keras_deblur.web --model out/generator_fp32_512x512.tflite --port 8080

The page is static and any file server can serve it (`python -m http.server
-d web`), but browsers give WebAssembly threads only to cross-origin-isolated
pages, which takes two response headers (COOP/COEP) that `http.server` does
not send; this server sends them. Without `--model` it serves the shipped
mobile generator exported to fp32 TFLite at 256x256 (`web/models/`, exported
on first use and again when the shipped `.keras` is newer).
"""

import functools
import http.server
import json
import logging
import os
import sys
import urllib.parse

logger = logging.getLogger(__name__)

WEB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")
# The page's default model (web/app.js DEFAULT_MODEL), relative to WEB_DIR.
DEFAULT_MODEL = "models/generator_fp32_256x256.tflite"
DEFAULT_MODEL_SIZE = (256, 256)
RUNTIME_PACKAGE = "@litertjs/core"

# Cross-origin isolation: what makes SharedArrayBuffer, hence wasm threads,
# available to the page.
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


class WebError(Exception):
    """A one-line problem with the demo's files (missing runtime, failed export)."""


def check_runtime(web_dir=WEB_DIR):
    """Checks that `npm ci --prefix web` installed the pinned LiteRT.js.

    Returns:
        str: the installed version of `@litertjs/core`.

    Raises:
        WebError: not installed, or not the version `web/package.json` pins.
    """
    with open(os.path.join(web_dir, "package.json")) as file:
        pinned = json.load(file)["dependencies"][RUNTIME_PACKAGE]
    installed_manifest = os.path.join(web_dir, "node_modules", RUNTIME_PACKAGE, "package.json")
    if not os.path.isfile(installed_manifest):
        raise WebError(f"{installed_manifest}: LiteRT.js not installed; run: npm ci --prefix web")
    with open(installed_manifest) as file:
        installed = json.load(file)["version"]
    if installed != pinned:
        raise WebError(
            f"{installed_manifest}: version {installed}, web/package.json pins {pinned}; "
            "run: npm ci --prefix web"
        )
    return installed


def ensure_default_model(web_dir=WEB_DIR):
    """Exports the shipped mobile generator for the page unless an up-to-date export exists.

    Returns:
        str: path of the fp32 256x256 `.tflite` (`web/models/`).

    Raises:
        WebError: the export failed or did not pass its validation.
    """
    from keras_deblur.pretrained import DEFAULT_PRESET, preset_path

    path = os.path.join(web_dir, DEFAULT_MODEL)
    weights = preset_path(DEFAULT_PRESET)
    if os.path.isfile(path) and os.path.getmtime(path) >= os.path.getmtime(weights):
        return path
    from export.convert import ExportError
    from export.tflite import export_generator

    logger.info("Exporting %s to %s (once)", weights, path)
    try:
        reports = export_generator(
            DEFAULT_PRESET, os.path.dirname(path), input_sizes=(DEFAULT_MODEL_SIZE,)
        )
    except ExportError as error:
        raise WebError(f"{path}: export failed ({error})") from None
    if not reports[path]["passed"]:
        raise WebError(f"{path}: the export failed its validation against Keras")
    return path


class DemoRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder with the isolation headers, plus single files mapped to URL paths.

    `files` maps URL paths (`"/models/x.tflite"`) to files anywhere on disk,
    so a model or test image can be served without copying it under `web/`.
    """

    files = {}
    isolated = True
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        # Streaming wasm compilation needs this type; older Pythons lack it.
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".tflite": "application/octet-stream",
    }

    def translate_path(self, path):
        mapped = self.files.get(urllib.parse.unquote(urllib.parse.urlsplit(path).path))
        return mapped if mapped is not None else super().translate_path(path)

    def end_headers(self):
        if self.isolated:
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        # A re-exported model or an edited page must not come from the cache.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, message_format, *args):
        logger.debug("%s %s", self.address_string(), message_format % args)


class _DemoServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A browser that closes the page mid-download resets the connection:
        # routine, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_server(web_dir=WEB_DIR, host="127.0.0.1", port=8000, files=None, isolated=True):
    """An HTTP server for the demo, not yet started (call `serve_forever`).

    Args:
        web_dir: str. The page's folder. Defaults to the repository's `web/`.
        host: str. Interface to listen on. Defaults to "127.0.0.1".
        port: int. 0 picks a free port (read it from `server.server_address`).
        files: dict mapping URL paths to file paths served beside the folder.
        isolated: bool. Send the COOP/COEP headers that give the page wasm
            threads. False serves as a plain static server (one thread).

    Returns:
        a `http.server.ThreadingHTTPServer`.
    """
    handler = type(
        "Handler", (DemoRequestHandler,), {"files": dict(files or {}), "isolated": isolated}
    )
    return _DemoServer((host, port), functools.partial(handler, directory=web_dir))


def main(argv):
    del argv
    from absl import flags

    f = flags.FLAGS
    try:
        check_runtime()
        files = {}
        if f.model:
            if not os.path.isfile(f.model):
                raise WebError(f"{f.model}: no such file")
            url_path = "/models/" + urllib.parse.quote(os.path.basename(f.model))
            files[url_path] = os.path.abspath(f.model)
            query = "?model=" + url_path.lstrip("/")
        else:
            ensure_default_model()
            query = ""
        server = make_server(host=f.host, port=f.port, files=files)
    except (WebError, OSError) as error:
        sys.exit(f"error: {error}")
    host, port = server.server_address[:2]
    logging.info("Serving %s at http://%s:%d/%s (Ctrl-C stops)", WEB_DIR, host, port, query)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _define_flags():
    from absl import flags

    flags.DEFINE_string("host", "127.0.0.1", "Interface to listen on (0.0.0.0: every one).")
    flags.DEFINE_integer("port", 8000, "Port to listen on.")
    flags.DEFINE_string(
        "model",
        None,
        "A .tflite from python -m export.tflite (fixed size, float I/O) to open instead of "
        "the shipped mobile generator.",
    )


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
