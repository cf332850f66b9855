"""Detection-based evaluation: IoU, greedy matching and scores on boxes with known answers."""

import math

import cv2
import numpy as np
import pytest

from keras_deblur import detection


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 4, 4]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    iou = detection.box_iou(a, b)
    assert iou.shape == (2, 4)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0, 0.0])
    np.testing.assert_allclose(iou[1], [16 / 100, 0.0, 0.0, 0.0])


def test_box_iou_with_no_boxes():
    assert detection.box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)
    assert detection.box_iou([], []).shape == (0, 0)


def test_greedy_matching_takes_pairs_in_order_of_iou():
    reference = [[0, 0, 10, 10], [3, 0, 13, 10]]
    # IoU: pred 0 ~ ref 0 0.818, ~ ref 1 0.667; pred 1 ~ ref 1 1.0, ~ ref 0 0.54.
    predicted = [[1, 0, 11, 10], [3, 0, 13, 10]]
    assert detection.match_boxes(reference, predicted) == [(1, 1), (0, 0)]
    # Both predictions qualify for ref 0 alone; the higher IoU wins.
    assert detection.match_boxes(reference[:1], predicted) == [(0, 0)]


def test_each_box_is_matched_at_most_once():
    reference = [[0, 0, 10, 10]]
    predicted = [[0, 0, 10, 10], [0, 0, 10, 9], [1, 0, 10, 10]]
    assert detection.match_boxes(reference, predicted) == [(0, 0)]
    scores = detection.detection_scores(reference, predicted)
    assert (scores["true_positives"], scores["false_positives"], scores["false_negatives"]) == (
        1,
        2,
        0,
    )
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == 1.0
    assert scores["f1"] == pytest.approx(0.5)


def test_iou_threshold_is_inclusive_at_one_half():
    reference = [[0, 0, 10, 10]]
    exactly_half = [[0, 0, 10, 5]]  # IoU 50 / 100
    just_below = [[0, 0, 10, 4.9]]
    assert detection.detection_scores(reference, exactly_half)["true_positives"] == 1
    assert detection.detection_scores(reference, just_below)["true_positives"] == 0


def test_scores_on_a_known_scene():
    reference = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]]
    predicted = [[1, 1, 10, 10], [21, 20, 31, 30], [100, 100, 110, 110]]  # 2 hits, 1 miss-fire
    scores = detection.detection_scores(reference, predicted)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_class_ids_prevent_cross_class_matches():
    reference = [[0, 0, 10, 10, 0]]
    assert detection.detection_scores(reference, [[0, 0, 10, 10, 2]])["true_positives"] == 0
    assert detection.detection_scores(reference, [[0, 0, 10, 10, 0]])["true_positives"] == 1


def test_undefined_ratios_are_nan_not_zero():
    scores = detection.detection_scores(np.zeros((0, 4)), np.zeros((0, 4)))
    assert math.isnan(scores["precision"]) and math.isnan(scores["recall"])
    scores = detection.detection_scores([[0, 0, 1, 1]], np.zeros((0, 4)))
    assert scores["recall"] == 0.0 and math.isnan(scores["precision"])


def test_bad_box_arrays_are_rejected():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        detection.box_iou(np.zeros((3, 3)), np.zeros((1, 4)))


def test_compare_detections_with_a_pluggable_detector():
    # A toy detector: one box per bright square, found only if its edges are crisp.
    def bright_squares(image):
        gray = image[:, :, 0]
        mask = (gray > 200).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        rects = stats[1:, :4]
        return np.column_stack([rects[:, :2], rects[:, :2] + rects[:, 2:]]).astype(float)

    sharp = np.zeros((64, 64, 3), np.uint8)
    sharp[5:20, 5:20] = 255
    sharp[30:50, 35:60] = 255
    blurred = cv2.blur(sharp, (15, 15))
    result = detection.compare_detections(
        bright_squares, sharp, {"blurred": blurred, "deblurred": sharp.copy()}
    )
    assert result["reference_boxes"] == 2
    assert result["deblurred"]["recall"] == 1.0 and result["deblurred"]["precision"] == 1.0
    assert result["blurred"]["recall"] < 1.0


def test_compare_detections_rejects_size_mismatch():
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="blurred image size"):
        detection.compare_detections(
            lambda _: np.zeros((0, 4)), image, {"blurred": np.zeros((32, 30, 3), np.uint8)}
        )


def test_decode_yolov8_layout_with_nms_and_classes():
    # (1, 4 + 2 classes, 12 boxes): two overlapping class-0 boxes, one class-1 box, weak rest.
    boxes = np.zeros((12, 6), np.float32)
    boxes[:, :4] = [200, 200, 10, 10]
    boxes[:, 4] = 0.1
    boxes[0] = [50, 50, 20, 20, 0.9, 0.0]
    boxes[1] = [51, 50, 20, 20, 0.8, 0.0]
    boxes[2] = [51, 50, 20, 20, 0.0, 0.7]
    decoded, scores = detection.decode_yolo_output(boxes.T[None])
    np.testing.assert_allclose(scores, [0.9, 0.7], rtol=1e-6)
    np.testing.assert_allclose(decoded[0], [40, 40, 60, 60, 0])
    assert decoded[1, 4] == 1  # same place, other class: NMS keeps it


def test_decode_yolov5_layout_multiplies_objectness():
    rows = np.zeros((12, 7), np.float32)  # 12 boxes, 5 + 2 classes
    rows[0] = [10, 10, 4, 4, 0.5, 0.9, 0.1]  # score 0.45
    rows[1] = [30, 30, 4, 4, 0.2, 0.9, 0.1]  # score 0.18 < 0.25
    decoded, scores = detection.decode_yolo_output(rows[None])
    assert len(decoded) == 1
    assert scores[0] == pytest.approx(0.45)
    np.testing.assert_allclose(decoded[0], [8, 8, 12, 12, 0])


def test_yolo_loader_reports_missing_and_invalid_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        detection.yolo_onnx_detector(tmp_path / "missing.onnx")
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a network")
    with pytest.raises(ValueError, match="bogus.onnx: OpenCV cannot load") as info:
        detection.yolo_onnx_detector(bogus)
    assert "\n" not in str(info.value)


def test_default_detector_names_the_opencv_version_when_missing(monkeypatch):
    # OpenCV 5 moved HOG and the Haar cascades to contrib; simulate such a build.
    monkeypatch.delattr(cv2, "HOGDescriptor")
    with pytest.raises(RuntimeError, match=cv2.__version__):
        detection.default_detector()


@pytest.mark.skipif(
    not detection.default_detector_available(),
    reason=f"OpenCV {cv2.__version__} has no HOG/Haar detectors (OpenCV 5 moved them to contrib)",
)
def test_default_detector_finds_the_astronauts_face():
    import skimage.data

    photo = skimage.data.astronaut()
    boxes = detection.default_detector()(photo)
    assert boxes.ndim == 2 and boxes.shape[1] == 5
    faces = boxes[boxes[:, 4] == detection.FACE_CLASS]
    # The face spans about x 180-270, y 70-160 in this 512x512 photo (checked by eye).
    assert detection.box_iou(faces, [[180, 70, 270, 160]]).max() >= 0.5
    # The same scene through the pluggable path: a perfect copy agrees with itself.
    result = detection.compare_detections(detection.default_detector(), photo, {"copy": photo})
    assert result["copy"]["recall"] == 1.0 and result["copy"]["precision"] == 1.0


def _fake_yolov8_onnx(path, predictions):
    """Writes an ONNX graph whose output is `predictions` (1, 4 + classes, boxes), whatever
    the (1, 3, 640, 640) input, so the cv2.dnn path runs without downloading a model."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["predictions", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fake_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(predictions.shape))],
        [
            numpy_helper.from_array(predictions, "predictions"),
            numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def test_yolo_onnx_detector_maps_letterboxed_boxes_back_to_the_image(tmp_path):
    predictions = np.zeros((1, 6, 16), np.float32)
    predictions[0, :, :] = np.array([600, 600, 10, 10, 0.01, 0.01])[:, None]  # weak background
    predictions[0, :, 0] = [320, 320, 64, 128, 0.9, 0.0]  # canvas centre, class 0
    predictions[0, :, 1] = [100, 400, 40, 40, 0.0, 0.8]  # class 1
    path = tmp_path / "fake_yolo.onnx"
    _fake_yolov8_onnx(path, predictions)
    image = np.zeros((320, 640, 3), np.uint8)  # scale 1, letterbox pads 160 rows above
    boxes = detection.yolo_onnx_detector(path)(image)
    np.testing.assert_allclose(boxes, [[288, 96, 352, 224, 0], [80, 220, 120, 260, 1]])
    people_only = detection.yolo_onnx_detector(path, classes=[0])(image)
    np.testing.assert_allclose(people_only, [[288, 96, 352, 224, 0]])
    small = np.zeros((160, 320, 3), np.uint8)  # scale 2: boxes halve
    np.testing.assert_allclose(
        detection.yolo_onnx_detector(path, classes=[0])(small), [[144, 48, 176, 112, 0]]
    )
