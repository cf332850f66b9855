"""Detection-based evaluation: does a detector find more after deblurring?

DeblurGAN (Kupyn et al., CVPR 2018, section on object detection) runs a detector
on the sharp frame, on the blurred frame and on the restored frame, and scores
the blurred and restored detections against the sharp ones. This module does
the same with any detector:

- A detector is any callable `image -> boxes`: `image` a uint8 RGB array
  `(H, W, 3)`, `boxes` a float array `(N, 4)` of `x1, y1, x2, y2` pixel corners,
  or `(N, 5)` with a class id in the last column (then only boxes of the same
  class can match).
- `default_detector()` needs no download: OpenCV's HOG people detector plus its
  frontal-face Haar cascade (`hog_people_detector`, `haar_cascade_detector`
  give either alone, or other cascades). OpenCV 5 moved both out of the main
  package (into opencv_contrib); OpenCV 4.x wheels (e.g. opencv-python-headless
  4.14.0.94) ship them, with the cascade XML files under `cv2.data.haarcascades`.
- `yolo_onnx_detector(path)` runs a local YOLO ONNX export (ultralytics YOLOv5
  or YOLOv8-style output) through `cv2.dnn`.

Matching is greedy at IoU >= 0.5: candidate pairs are taken in order of
decreasing IoU, each box matched at most once. Detections on the sharp image
are the reference, so precision, recall and F1 measure agreement with what the
detector sees without blur, not correctness against human labels.
"""

import os

import cv2
import numpy as np

DEFAULT_IOU_THRESHOLD = 0.5


def _as_boxes(boxes, name="boxes"):
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
        raise ValueError(
            f"{name} must be an (N, 4) array of x1, y1, x2, y2 (or (N, 5) with a class id). "
            f"Received: shape={boxes.shape}"
        )
    return boxes


def box_iou(boxes_a, boxes_b):
    """Intersection over union of every box in `boxes_a` with every box in `boxes_b`.

    Args:
        boxes_a: array `(N, 4+)` of `x1, y1, x2, y2` (extra columns ignored).
        boxes_b: array `(M, 4+)`.

    Returns:
        float64 array `(N, M)` in `[0, 1]`; 0 where a union is empty.
    """
    a = _as_boxes(boxes_a, "boxes_a")[:, :4]
    b = _as_boxes(boxes_b, "boxes_b")[:, :4]
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0.0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersection / union, 0.0)


def match_boxes(reference, predicted, iou_threshold=DEFAULT_IOU_THRESHOLD):
    """Greedy one-to-one matching of predicted boxes to reference boxes.

    Args:
        reference: array `(N, 4)` or `(N, 5)` (class id last). Reference boxes.
        predicted: array `(M, 4)` or `(M, 5)`. Boxes to score.
        iou_threshold: float. Minimum IoU of a match. Defaults to 0.5.

    Returns:
        List of `(reference_index, predicted_index)` pairs, highest IoU first.
    """
    reference = _as_boxes(reference, "reference")
    predicted = _as_boxes(predicted, "predicted")
    iou = box_iou(reference, predicted)
    if reference.shape[1] == 5 and predicted.shape[1] == 5:
        iou = np.where(reference[:, None, 4] == predicted[None, :, 4], iou, 0.0)
    rows, cols = np.nonzero(iou >= iou_threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_reference, used_predicted, matches = set(), set(), []
    for r, p in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if r not in used_reference and p not in used_predicted:
            used_reference.add(r)
            used_predicted.add(p)
            matches.append((r, p))
    return matches


def _ratio(numerator, denominator):
    return numerator / denominator if denominator else float("nan")


def scores_from_counts(true_positives, false_positives, false_negatives):
    """Precision, recall and F1 from counts; NaN where a ratio is 0 / 0.

    Returns:
        dict with `true_positives`, `false_positives`, `false_negatives`,
        `precision`, `recall`, `f1`.
    """
    precision = _ratio(true_positives, true_positives + false_positives)
    recall = _ratio(true_positives, true_positives + false_negatives)
    f1 = _ratio(2 * true_positives, 2 * true_positives + false_positives + false_negatives)
    return {
        "true_positives": int(true_positives),
        "false_positives": int(false_positives),
        "false_negatives": int(false_negatives),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def detection_scores(reference, predicted, iou_threshold=DEFAULT_IOU_THRESHOLD):
    """Precision, recall and F1 of `predicted` boxes against `reference` boxes.

    Args:
        reference: array `(N, 4|5)`. Boxes found on the sharp image.
        predicted: array `(M, 4|5)`. Boxes found on the blurred or restored image.
        iou_threshold: float. Defaults to 0.5.

    Returns:
        dict as `scores_from_counts`: a match is a true positive, an unmatched
        prediction a false positive, an unmatched reference box a false negative.
    """
    reference = _as_boxes(reference, "reference")
    predicted = _as_boxes(predicted, "predicted")
    matched = len(match_boxes(reference, predicted, iou_threshold))
    return scores_from_counts(matched, len(predicted) - matched, len(reference) - matched)


def compare_detections(detector, sharp, candidates, iou_threshold=DEFAULT_IOU_THRESHOLD):
    """Runs `detector` on the sharp image and on each candidate, scoring candidates.

    Args:
        detector: callable `uint8 RGB (H, W, 3) -> boxes (N, 4|5)`.
        sharp: uint8 RGB array. Its detections are the reference.
        candidates: dict name -> uint8 RGB array of the same size, e.g.
            `{"blurred": ..., "deblurred": ...}`.
        iou_threshold: float. Defaults to 0.5.

    Returns:
        dict with `reference_boxes` (int) and, per candidate name, the dict of
        `detection_scores`.
    """
    reference = _as_boxes(detector(sharp), "detector output")
    results = {"reference_boxes": len(reference)}
    for name, image in candidates.items():
        if image.shape[:2] != sharp.shape[:2]:
            raise ValueError(
                f"{name} image size {image.shape[:2]} differs from the sharp image's "
                f"{sharp.shape[:2]}"
            )
        predicted = _as_boxes(detector(image), "detector output")
        results[name] = detection_scores(reference, predicted, iou_threshold)
    return results


def _xywh_to_corners(rects):
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)


def _to_gray(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"detectors expect uint8 images. Received: dtype={image.dtype}")
    if image.ndim == 3:
        return cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2GRAY)
    return image


def hog_people_detector(win_stride=8, scale=1.05, hit_threshold=0.0):
    """OpenCV's built-in HOG + linear SVM pedestrian detector (Dalal and Triggs, 2005).

    Needs no model file, but needs an OpenCV with `cv2.HOGDescriptor` (4.x; OpenCV 5
    moved it to opencv_contrib).

    Args:
        win_stride: int. Window step in pixels. Defaults to 8.
        scale: float. Pyramid scale step. Defaults to 1.05.
        hit_threshold: float. SVM score threshold. Defaults to 0.

    Returns:
        A detector: callable `uint8 RGB (H, W, 3) -> float array (N, 4)`.

    Raises:
        RuntimeError: if this OpenCV build has no HOG detector.
    """
    if not hasattr(cv2, "HOGDescriptor"):
        raise RuntimeError(
            f"OpenCV {cv2.__version__} has no HOG people detector (OpenCV 5 moved it to "
            "opencv_contrib); install opencv-python-headless 4.x (e.g. 4.14.0.94) or pass your "
            "own detector"
        )
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(image):
        rects, _ = hog.detectMultiScale(
            _to_gray(image),
            hitThreshold=hit_threshold,
            winStride=(win_stride, win_stride),
            padding=(8, 8),
            scale=scale,
        )
        return _xywh_to_corners(rects)

    return detect


def haar_cascade_detector(
    cascade="haarcascade_frontalface_default.xml", scale_factor=1.1, min_neighbors=5
):
    """A Haar cascade detector (Viola and Jones, 2001) from OpenCV's bundled XML files.

    Args:
        cascade: str. A file name under `cv2.data.haarcascades` (e.g.
            `haarcascade_fullbody.xml`) or a path to a cascade XML file.
            Defaults to the frontal-face cascade.
        scale_factor: float. Pyramid scale step. Defaults to 1.1.
        min_neighbors: int. Overlapping hits needed to keep a detection. Defaults to 5.

    Returns:
        A detector: callable `uint8 RGB (H, W, 3) -> float array (N, 4)`.

    Raises:
        RuntimeError: if this OpenCV build has no cascade classifier.
        FileNotFoundError: if the cascade file is missing or does not load.
    """
    if not hasattr(cv2, "CascadeClassifier"):
        raise RuntimeError(
            f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 moved them to "
            "opencv_contrib); install opencv-python-headless 4.x (e.g. 4.14.0.94) or pass your "
            "own detector"
        )
    path = cascade
    if not os.path.isfile(path):
        path = os.path.join(getattr(getattr(cv2, "data", None), "haarcascades", ""), cascade)
    classifier = cv2.CascadeClassifier(path) if os.path.isfile(path) else None
    if classifier is None or classifier.empty():
        raise FileNotFoundError(f"{cascade}: not a readable Haar cascade XML file")

    def detect(image):
        rects = classifier.detectMultiScale(
            _to_gray(image), scaleFactor=scale_factor, minNeighbors=min_neighbors
        )
        return _xywh_to_corners(rects)

    return detect


def default_detector_available():
    """Whether `default_detector()` works with the installed OpenCV (4.x, not 5)."""
    return hasattr(cv2, "HOGDescriptor") and hasattr(cv2, "CascadeClassifier")


PERSON_CLASS = 0
FACE_CLASS = 1


def default_detector():
    """The detector `--detection` uses without a model file: people and faces.

    OpenCV's HOG people detector (class 0; full-body pedestrians, as in the street
    scenes of GoPro) together with its frontal-face Haar cascade (class 1; faces
    in close-ups, as in the embedded photos). Boxes of one class only match boxes
    of the same class.

    Returns:
        A detector: callable `uint8 RGB (H, W, 3) -> float array (N, 5)`, the class
        id in the last column.

    Raises:
        RuntimeError: naming the OpenCV version if it lacks these detectors.
    """
    people = hog_people_detector()
    faces = haar_cascade_detector()

    def detect(image):
        found = [
            np.column_stack([boxes, np.full(len(boxes), label, np.float64)])
            for boxes, label in ((people(image), PERSON_CLASS), (faces(image), FACE_CLASS))
        ]
        return np.concatenate(found, axis=0)

    return detect


def decode_yolo_output(output, score_threshold=0.25, nms_threshold=0.45, has_objectness=None):
    """Turns a raw YOLO output tensor into boxes with class ids, after NMS.

    Two layouts are recognised: YOLOv5-style `(1, num_boxes, 5 + classes)` with an
    objectness column, and YOLOv8-style `(1, 4 + classes, num_boxes)` without one.

    Args:
        output: array of one of the layouts above; box columns are centre x,
            centre y, width, height in network-input pixels.
        score_threshold: float. Minimum class score (times objectness). Defaults to 0.25.
        nms_threshold: float. IoU above which lower-scoring boxes of the same class
            are dropped. Defaults to 0.45.
        has_objectness: bool or None. None infers it from the layout (boxes along
            the last axis means YOLOv8-style, no objectness). Defaults to None.

    Returns:
        `(boxes, scores)`: float array `(N, 5)` of `x1, y1, x2, y2, class_id` in
        network-input pixels, and float array `(N,)`.
    """
    output = np.asarray(output, dtype=np.float32)
    if output.ndim == 3:
        output = output[0]
    if output.ndim != 2:
        raise ValueError(f"unexpected YOLO output shape {output.shape}")
    transposed = output.shape[0] < output.shape[1]
    if transposed:
        output = output.T
    if has_objectness is None:
        has_objectness = not transposed
    first_class = 5 if has_objectness else 4
    if output.shape[1] <= first_class:
        raise ValueError(f"YOLO output has no class columns: shape {output.shape}")
    class_scores = output[:, first_class:]
    if has_objectness:
        class_scores = class_scores * output[:, 4:5]
    class_ids = np.argmax(class_scores, axis=1)
    scores = class_scores[np.arange(len(class_ids)), class_ids]
    keep = scores >= score_threshold
    centres, sizes = output[keep, :2], output[keep, 2:4]
    class_ids, scores = class_ids[keep], scores[keep]
    corners = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    if len(scores) == 0:
        return np.zeros((0, 5)), np.zeros((0,))
    # Offsetting each class far apart makes one class-agnostic NMS call class-aware.
    offset = class_ids[:, None] * (4.0 * (np.abs(corners).max() + 1.0))
    shifted = corners + offset
    rects = np.concatenate([shifted[:, :2], shifted[:, 2:] - shifted[:, :2]], axis=1)
    kept = np.asarray(
        cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), score_threshold, nms_threshold),
        dtype=np.int64,
    ).reshape(-1)
    boxes = np.concatenate([corners[kept], class_ids[kept, None]], axis=1).astype(np.float64)
    return boxes, scores[kept].astype(np.float64)


def yolo_onnx_detector(
    path, input_size=640, score_threshold=0.25, nms_threshold=0.45, classes=None
):
    """A detector from a local YOLO ONNX file, run with OpenCV's DNN module.

    The image is letterboxed to `input_size` (aspect kept, grey padding) as
    ultralytics exports expect; boxes are mapped back to image pixels.

    Args:
        path: str. Local `.onnx` file (e.g. `yolov8n.onnx` exported by ultralytics).
        input_size: int. Square network input size. Defaults to 640.
        score_threshold: float. Defaults to 0.25.
        nms_threshold: float. Defaults to 0.45.
        classes: iterable of int or None. Keep only these class ids (e.g. `[0]` for
            COCO people); None keeps all. Defaults to None.

    Returns:
        A detector: callable `uint8 RGB (H, W, 3) -> float array (N, 5)` with the
        class id in the last column.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if OpenCV cannot read the file as an ONNX network.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        net = cv2.dnn.readNetFromONNX(path)
    except cv2.error as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else "cv2.error"
        raise ValueError(f"{path}: OpenCV cannot load this ONNX network ({message})") from None
    keep_classes = None if classes is None else np.asarray(list(classes))

    def detect(image):
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError(f"expected a uint8 RGB image. Received: {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        ratio = input_size / max(height, width)
        new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
        canvas = np.full((input_size, input_size, 3), 114, np.uint8)
        top, left = (input_size - new_h) // 2, (input_size - new_w) // 2
        canvas[top : top + new_h, left : left + new_w] = cv2.resize(
            image[:, :, :3], (new_w, new_h), interpolation=cv2.INTER_LINEAR
        )
        net.setInput(cv2.dnn.blobFromImage(canvas, scalefactor=1 / 255.0, swapRB=False))
        boxes, _ = decode_yolo_output(net.forward(), score_threshold, nms_threshold)
        boxes[:, [0, 2]] = np.clip((boxes[:, [0, 2]] - left) / ratio, 0, width)
        boxes[:, [1, 3]] = np.clip((boxes[:, [1, 3]] - top) / ratio, 0, height)
        if keep_classes is not None:
            boxes = boxes[np.isin(boxes[:, 4], keep_classes)]
        return boxes

    return detect
