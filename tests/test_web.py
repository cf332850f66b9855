"""The in-browser demo (web/, keras_deblur.web): LiteRT.js in a real headless Chromium.

The page runs the shipped mobile generator, exported to fp32 TFLite at
256x256, on photos of any size; its PNG download is compared with what Python
LiteRT gives on the same model through `export.android_reference`, whose
tiling, padding and float32 pixel arithmetic `web/tiling.js` repeats
operation for operation. So the two differ only where the model's float
output does (wasm against native XNNPACK kernels: at most 3.7e-9 measured
here at 256x256; other CPUs may take other kernel paths), and an output
channel moves by one level only when its value lies that close to a rounding
boundary: a float difference d flips about 127.5 * d of the channels.
Tolerance: every channel within 1 level of 255, and at least 99.9% of them
identical (room for d up to ~1e-5; the test prints the measured share).

Needs Playwright (requirements-dev.txt), a Chromium binary (Debian's
`chromium`, or $KERAS_DEBLUR_CHROMIUM) and LiteRT.js (`npm ci --prefix web`);
`.ci/run` installs all three, and each missing one skips these tests with the
reason. Set $KERAS_DEBLUR_WEB_SCREENSHOT to a path to keep the screenshot
(the README's is docs/web_demo.jpg).
"""

import base64
import json
import os
import shutil
import threading
import urllib.parse
import urllib.request

import cv2
import numpy as np
import pytest

from export import android_reference as android
from export.convert import convert_generator
from export.runtime import TFLiteGenerator, measure_latency
from keras_deblur import load_generator, web
from keras_deblur.data.embedded import embedded_photo_paths

MODEL_SIZE = web.DEFAULT_MODEL_SIZE
# web/tiling.js overlapFor(256, 256): the Android sample's 32 pixels.
OVERLAP = 32
PAGE_TIMEOUT_MS = 60_000
MAX_LEVEL_DIFF = 1
MIN_IDENTICAL_SHARE = 0.999


def _chromium():
    path = os.environ.get("KERAS_DEBLUR_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    if not path:
        pytest.skip("no Chromium on PATH (apt-get install chromium, or set KERAS_DEBLUR_CHROMIUM)")
    return path


@pytest.fixture(scope="module")
def browser():
    try:
        web.check_runtime()
    except web.WebError as error:
        pytest.skip(str(error))
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright not installed (pip install -r requirements-dev.txt)",
    )
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


def _blurred_photo(height=None, width=None):
    """A held-out embedded photo (cat, 300x451), cropped, with a horizontal motion blur; RGB."""
    bgr = cv2.imread(embedded_photo_paths("validation")[0])[:height, :width]
    kernel = np.full((1, 9), 1 / 9, np.float32)
    return cv2.filter2D(bgr, -1, kernel, borderType=cv2.BORDER_REFLECT)[..., ::-1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The exported model and the test images, by URL path."""
    folder = tmp_path_factory.mktemp("web")
    model = folder / "model.tflite"
    model.write_bytes(convert_generator(load_generator("mobile"), "fp32", MODEL_SIZE))
    images = {
        "photo.png": _blurred_photo(200, 300),  # 2 tiles wide, padded in height
        "odd.png": _blurred_photo(37, 53),
        "square.png": _blurred_photo(*MODEL_SIZE),
        "cat.png": _blurred_photo(),  # 2x2 tiles
    }
    paths = {"/t/model.tflite": str(model)}
    for name, rgb in images.items():
        cv2.imwrite(str(folder / name), rgb[..., ::-1])
        paths[f"/t/{name}"] = str(folder / name)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated" * 10)
    paths["/t/corrupt.png"] = str(folder / "corrupt.png")
    return {"paths": paths, "images": images, "model": str(model)}


def _start(paths, isolated):
    server = web.make_server(port=0, files=paths, isolated=isolated)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def base_url(files):
    """The demo as `python -m keras_deblur.web` serves it (COOP/COEP: wasm threads)."""
    server = _start(files["paths"], isolated=True)
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 800, "height": 600})
    yield page
    page.close()


def _open(page, base_url, **params):
    """Opens the page and waits for its verdict: (result dict, None) or (None, error)."""
    page.goto(base_url + "index.html?" + urllib.parse.urlencode(params))
    page.wait_for_function(
        "document.body.dataset.result || document.body.dataset.error", timeout=PAGE_TIMEOUT_MS
    )
    data = page.evaluate("({...document.body.dataset})")
    return (json.loads(data["result"]), None) if "result" in data else (None, data["error"])


def _deblur(page, base_url, image):
    result, error = _open(page, base_url, model="t/model.tflite", image=f"t/{image}", autorun=1)
    assert error is None, error
    return result


def _downloaded(page):
    """The PNG behind the page's download button, as RGB uint8."""
    encoded = page.evaluate(
        """async () => {
            const blob = await (await fetch(document.getElementById('download').href)).blob();
            const bytes = new Uint8Array(await blob.arrayBuffer());
            let text = '';
            for (const byte of bytes) text += String.fromCharCode(byte);
            return btoa(text);
        }"""
    )
    png = np.frombuffer(base64.b64decode(encoded), np.uint8)
    return cv2.imdecode(png, cv2.IMREAD_UNCHANGED)[..., 2::-1]


def _python_litert(files, rgb):
    return android.deblur_rgb(TFLiteGenerator(files["model"]), rgb, MODEL_SIZE, OVERLAP)


def _assert_matches_python(page_rgb, python_rgb, label):
    assert page_rgb.shape == python_rgb.shape
    diff = np.abs(page_rgb.astype(np.int16) - python_rgb.astype(np.int16))
    identical = float(np.mean(diff == 0))
    print(
        f"{label}: page vs Python LiteRT: max {diff.max()} level(s), "
        f"{identical:.5%} of channels identical"
    )
    assert diff.max() <= MAX_LEVEL_DIFF
    assert identical >= MIN_IDENTICAL_SHARE


def test_page_matches_python_litert_on_a_tiled_photo(page, base_url, files):
    rgb = files["images"]["photo.png"]
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    result = _deblur(page, base_url, "photo.png")
    # Works offline: everything, LiteRT.js included, comes from the local server.
    assert [url for url in requested if not url.startswith((base_url, "blob:", "data:"))] == []
    assert (result["width"], result["height"], result["tiles"]) == (300, 200, 2)
    output = _downloaded(page)
    python_output = _python_litert(files, rgb)
    assert np.any(python_output != rgb), "the model left the photo unchanged: nothing compared"
    _assert_matches_python(output, python_output, "300x200, 2 tiles")


def test_odd_size_comes_back_at_input_size(page, base_url, files):
    result = _deblur(page, base_url, "odd.png")
    assert (result["width"], result["height"]) == (53, 37)
    output = _downloaded(page)
    assert output.shape == (37, 53, 3)
    _assert_matches_python(output, _python_litert(files, files["images"]["odd.png"]), "53x37")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"model": "t/model.tflite", "image": "t/corrupt.png"}, "image t/corrupt.png: cannot be"),
        ({"model": "t/missing.tflite", "image": "t/odd.png"}, "model t/missing.tflite: HTTP 404"),
        ({"model": "t/odd.png", "image": "t/odd.png"}, "model t/odd.png: LiteRT.js cannot load"),
    ],
)
def test_failures_set_a_one_line_data_error(page, base_url, params, expected):
    result, error = _open(page, base_url, autorun=1, **params)
    assert result is None
    assert error.startswith(expected)
    assert "\n" not in error


def test_file_picker_deblurs_and_offers_a_download(page, base_url, files, tmp_path):
    page.goto(base_url + "index.html?model=t/model.tflite")
    page.wait_for_function("document.body.dataset.model", timeout=PAGE_TIMEOUT_MS)
    # The progress bar as it stands each time the status line changes.
    page.evaluate(
        """() => {
            window.progressSeen = [];
            const progress = document.getElementById('progress');
            new MutationObserver(() => {
                if (!progress.hidden) window.progressSeen.push(`${progress.value}/${progress.max}`);
            }).observe(document.getElementById('status'), {childList: true, subtree: true});
        }"""
    )
    page.set_input_files("#image-input", files["paths"]["/t/cat.png"])
    page.wait_for_function("document.body.dataset.result", timeout=PAGE_TIMEOUT_MS)
    assert json.loads(page.evaluate("document.body.dataset.result"))["tiles"] == 4
    assert page.evaluate("window.progressSeen")[-4:] == ["1/4", "2/4", "3/4", "4/4"]
    assert page.is_hidden("#progress")
    assert page.get_attribute("#download", "download") == "cat_deblurred.png"
    assert page.is_visible("#download") and page.is_visible("#compare")
    screenshot = os.environ.get("KERAS_DEBLUR_WEB_SCREENSHOT") or str(tmp_path / "web_demo.jpg")
    page.screenshot(path=screenshot, type="jpeg", quality=60, full_page=True)
    assert 0 < os.path.getsize(screenshot) < 100_000


@pytest.mark.parametrize("isolated", [True, False], ids=["threads", "one_thread"])
def test_latency_at_256_beside_python_litert(browser, files, isolated):
    server = _start(files["paths"], isolated)
    page = browser.new_page()
    try:
        base_url = f"http://127.0.0.1:{server.server_address[1]}/"
        result, error = _open(
            page, base_url, model="t/model.tflite", image="t/square.png", autorun=1, repeat=5
        )
    finally:
        page.close()
        server.shutdown()
        server.server_close()
    assert error is None, error
    assert result["tiles"] == 1
    if not isolated:
        assert result["threads"] == 1  # no SharedArrayBuffer without COOP/COEP
    python_ms = measure_latency(files["model"], MODEL_SIZE, num_threads=result["threads"])
    print(
        f"256x256, {result['threads']} thread(s), median of 5: browser (LiteRT.js wasm) "
        f"model {result['model_ms']:.1f} ms, whole deblur {result['ms']:.1f} ms; "
        f"Python LiteRT {python_ms:.1f} ms"
    )
    assert result["ms"] > 0


def test_server_sends_isolation_headers_and_the_wasm_type():
    checks = [("index.html", "text/html")]
    wasm = "node_modules/@litertjs/core/wasm/litert_wasm_internal.wasm"
    if os.path.isfile(os.path.join(web.WEB_DIR, wasm)):
        checks.append((wasm, "application/wasm"))  # streaming compilation needs this type
    server = _start({}, isolated=True)
    try:
        for path, content_type in checks:
            url = f"http://127.0.0.1:{server.server_address[1]}/{path}"
            with urllib.request.urlopen(url) as response:
                headers = response.headers
            assert headers["Content-Type"].startswith(content_type)
            for name, value in web.ISOLATION_HEADERS.items():
                assert headers[name] == value
    finally:
        server.shutdown()
        server.server_close()


def test_check_runtime_names_the_install_command(tmp_path):
    (tmp_path / "package.json").write_text(
        json.dumps({"dependencies": {"@litertjs/core": "2.5.3"}})
    )
    with pytest.raises(web.WebError, match="not installed; run: npm ci --prefix web"):
        web.check_runtime(str(tmp_path))
    installed = tmp_path / "node_modules" / "@litertjs" / "core"
    installed.mkdir(parents=True)
    (installed / "package.json").write_text(json.dumps({"version": "2.4.0"}))
    with pytest.raises(web.WebError, match="version 2.4.0, web/package.json pins 2.5.3"):
        web.check_runtime(str(tmp_path))


def test_an_up_to_date_default_model_is_not_exported_again(tmp_path):
    model = tmp_path / web.DEFAULT_MODEL
    model.parent.mkdir(parents=True)
    model.write_bytes(b"exported before")  # newer than the shipped .keras: kept as it is
    assert web.ensure_default_model(str(tmp_path)) == str(model)
    assert model.read_bytes() == b"exported before"


def test_the_page_and_the_launcher_agree_on_the_default_model():
    with open(os.path.join(web.WEB_DIR, "app.js")) as file:
        assert f"const DEFAULT_MODEL = '{web.DEFAULT_MODEL}';" in file.read()
