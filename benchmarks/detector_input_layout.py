"""Would the detector gain from reading the letterboxed frame as it is? A probe of a rewrite not built.

``PersonDetector`` letterboxes each frame into a (H, W, 3) uint8 canvas, then copies it into the
backend's (1, 3, H, W) float32 input (a transpose and a cast); OpenVINO then reorders that input to
its own channels-last layout. The alternative timed here: the detector graph given a (1, H, W, 3)
uint8 input with a ``Cast`` and a ``Transpose`` in front, so the canvas itself is the input. Both
ways run on each backend at the rectangular input (320x416 for vtest), letterbox included,
alternating in rounds; the outputs are compared (without OpenVINO installed, ONNX Runtime's rows
alone). For docs/benchmarks.md:

    python benchmarks/detector_input_layout.py --threads 1,2 --runs 100 --repeats 5
"""

from __future__ import annotations

import statistics
import sys
import time

import cv2
import numpy as np
import onnx
from _common import benchmark_parser, openvino_or_none, video_frames
from onnx import TensorProto, helper

from edge_reid.assets import DEFAULT_DETECTOR
from edge_reid.backends.detector_graph import load_detector_graph
from edge_reid.detector import PAD_VALUE

HEIGHT, WIDTH = 320, 416


def channels_last_uint8(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` reading a (1, H, W, 3) uint8 image: Cast and Transpose added in front of its input."""
    model = onnx.load_from_string(model.SerializeToString())
    image = model.graph.input[0]
    name = image.name
    model.graph.input.remove(image)
    model.graph.input.insert(0, helper.make_tensor_value_info(name + "_nhwc", TensorProto.UINT8, [1, HEIGHT, WIDTH, 3]))
    model.graph.node.insert(0, helper.make_node("Transpose", [name + "_float"], [name], perm=[0, 3, 1, 2]))
    model.graph.node.insert(0, helper.make_node("Cast", [name + "_nhwc"], [name + "_float"], to=TensorProto.FLOAT))
    onnx.checker.check_model(model)
    return model


def runners(model: onnx.ModelProto, threads: int, array: np.ndarray, ov=None) -> dict:
    """backend -> run() of ``model`` on ``array``, bound once as edge-reid's backends bind their
    input (OpenVINO: a tensor sharing the array's memory; ONNX Runtime: the array fed as it is).
    ``ov``: the ``openvino`` module, None for ONNX Runtime alone."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: array}
    if ov is None:
        return {"onnxruntime": lambda: session.run(None, feed)[0]}
    core = ov.Core()
    compiled = core.compile_model(core.read_model(model.SerializeToString(), b""), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False,
    })
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(array, shared_memory=True))

    def openvino_run() -> np.ndarray:
        request.infer()
        return request.get_output_tensor().data

    return {"onnxruntime": lambda: session.run(None, feed)[0], "openvino": openvino_run}


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    frame = video_frames(args, 1)[0]
    ov = openvino_or_none()  # None: ONNX Runtime's rows only
    graph = onnx.load_from_string(load_detector_graph(DEFAULT_DETECTOR, (HEIGHT, WIDTH)).model)
    ratio = min(HEIGHT / frame.shape[0], WIDTH / frame.shape[1])
    size = (int(round(frame.shape[1] * ratio)), int(round(frame.shape[0] * ratio)))
    canvas = np.full((HEIGHT, WIDTH, 3), PAD_VALUE, np.uint8)
    planar = np.zeros((1, 3, HEIGHT, WIDTH), np.float32)

    def letterbox(to_planar: bool) -> None:  # as PersonDetector._letterbox does
        canvas[:] = PAD_VALUE
        cv2.resize(frame, size, dst=canvas[: size[1], : size[0]], interpolation=cv2.INTER_LINEAR)
        if to_planar:
            np.copyto(planar[0], canvas.transpose(2, 0, 1), casting="unsafe")

    print("| backend | threads | float (1, 3, H, W) input, ms | uint8 (1, H, W, 3) input, ms | saved, ms | max abs output difference |")
    print("|---|---:|---:|---:|---:|---:|")
    for threads in [int(t) for t in args.threads.split(",")]:
        now, candidate = runners(graph, threads, planar, ov), runners(channels_last_uint8(graph), threads, canvas[None], ov)
        for backend in now:
            ways = {
                "float": lambda: (letterbox(True), now[backend]())[1],
                "uint8": lambda: (letterbox(False), candidate[backend]())[1],
            }
            difference = float(np.abs(np.array(ways["float"]()) - np.array(ways["uint8"]())).max())
            ms: dict[str, list[float]] = {way: [] for way in ways}
            for _ in range(args.repeats):
                for way, run in ways.items():
                    for _ in range(10):
                        run()
                    start = time.perf_counter()
                    for _ in range(args.runs):
                        run()
                    ms[way].append((time.perf_counter() - start) / args.runs * 1e3)
            base, other = statistics.median(ms["float"]), statistics.median(ms["uint8"])
            print(f"| {backend} | {threads} | {base:.2f} | {other:.2f} | {base - other:.2f} | {difference:.1e} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
