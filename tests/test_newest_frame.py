"""Live sources read for the newest frame: a slow loop drops frames instead of falling behind."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import unwrapped

from edge_reid.newest_frame import POLL_S, NewestFrameReader
from edge_reid.sources import FrameSource


def _produce(count: int, every_s: float):
    def read():
        for item in range(count):
            time.sleep(every_s)
            yield item

    return read


def test_a_slow_consumer_gets_the_newest_items_and_the_rest_are_counted_as_dropped():
    reader = NewestFrameReader(_produce(100, 0.002), lambda: False)
    taken = []
    for item in reader:
        taken.append(item)
        time.sleep(0.02)
    assert taken == sorted(set(taken)) and taken[-1] == 99  # in order, each once, the last one not lost
    assert len(taken) < 50 and reader.dropped == 100 - len(taken)


def test_a_fast_consumer_gets_every_item():
    reader = NewestFrameReader(_produce(30, 0.005), lambda: False)
    assert list(reader) == list(range(30)) and reader.dropped == 0


def test_an_error_of_the_source_is_raised_after_its_items():
    def read():
        yield 1
        time.sleep(0.05)
        raise OSError("device gone")

    reader = NewestFrameReader(read, lambda: False)
    taken = []
    with pytest.raises(OSError, match="device gone"):
        for item in reader:
            taken.append(item)
    assert taken == [1]


def test_a_stop_ends_the_iteration_while_the_source_is_blocked():
    release = threading.Event()
    stop = threading.Event()

    def read():
        yield 0
        release.wait(10)  # a read that blocks

    reader = NewestFrameReader(read, stop.is_set)
    iterator = iter(reader)
    assert next(iterator) == 0
    stop.set()
    started = time.monotonic()
    assert list(iterator) == []
    assert time.monotonic() - started < 5 * POLL_S + 0.5
    assert not reader.join(0.05)  # still blocked in its read
    release.set()
    assert reader.join(5)


class TimedCamera:
    """A stand-in for a camera's cv2.VideoCapture: a frame every `interval_s` (read blocks until it is
    due), `frames` of them, each image holding its frame number; counts what was read."""

    def __init__(self, frames: int, interval_s: float) -> None:
        self.frames, self.interval_s = frames, interval_s
        self.started = time.monotonic()
        self.read_count = 0
        self.released = False

    def isOpened(self):
        return True

    def read(self):
        if self.read_count >= self.frames:
            return False, None
        due = self.started + (self.read_count + 1) * self.interval_s
        time.sleep(max(0.0, due - time.monotonic()))
        image = np.full((8, 8, 3), self.read_count % 256, np.uint8)
        self.read_count += 1
        return True, image

    def newest(self) -> int:
        """The number of the newest frame the camera has captured by now."""
        return min(self.frames, int((time.monotonic() - self.started) / self.interval_s)) - 1

    def get(self, prop):
        return 0.0

    def release(self):
        self.released = True


def _consume(source: FrameSource, camera: TimedCamera, work_s: float):
    """A loop that takes `work_s` per frame; per frame: (index, timestamp, its camera number, how many
    frames behind the camera's newest it was when taken)."""
    seen = []
    for frame in source:
        number = int(frame.image[0, 0, 0])
        seen.append((frame.index, frame.timestamp_s, number, camera.newest() - number))
        time.sleep(work_s)
    return seen


def test_a_loop_slower_than_the_camera_sees_fresh_frames_timed_when_they_arrived():
    camera = TimedCamera(frames=120, interval_s=0.01)  # 100 fps
    source = FrameSource("/dev/video0", "camera", reconnect_timeout_s=0.0, capture_factory=lambda kind, name: camera)
    seen = _consume(source, camera, work_s=0.05)  # 20 fps of work
    indices, stamps, numbers, behind = (list(column) for column in zip(*seen))
    assert indices == list(range(len(seen)))  # delivered frames are numbered without gaps
    assert numbers == sorted(numbers) and numbers[-1] == 119  # the camera's frames, in order, to its last
    assert source.stats.dropped_frames == camera.read_count - len(seen) > 0
    assert source.stats.frames == len(seen)
    assert np.median(behind[1:-1]) <= 1 and max(behind[1:-1]) <= 5, behind  # fresh (the camera is 5x faster than the loop)
    gaps = np.diff(stamps[:-1])
    assert np.median(gaps) >= 0.04, gaps  # timestamps: when frames arrived, at the loop's pace (not 10 ms apart)


def test_every_frame_in_order_falls_behind_a_fast_camera():
    """What --all-frames asks for (and what every live source did before): nothing dropped, each
    frame later than the one before."""
    camera = TimedCamera(frames=60, interval_s=0.01)
    source = FrameSource("/dev/video0", "camera", reconnect_timeout_s=0.0, capture_factory=lambda kind, name: camera,
                         newest_only=False)
    seen = _consume(source, camera, work_s=0.03)
    numbers = [number for _, _, number, _ in seen]
    behind = [late for _, _, _, late in seen]
    assert numbers == list(range(60)) and source.stats.dropped_frames == 0
    assert behind[20] >= 20 and behind[20] > behind[5], behind  # 20 frames in, the loop works on a frame 20+ frames old


def test_a_dropped_camera_is_reopened_while_read_for_the_newest_frame():
    opened = []

    def factory(kind, name):
        opened.append(len(opened))
        return TimedCamera(frames=3, interval_s=0.01) if len(opened) <= 2 else None

    source = FrameSource("/dev/video0", "camera", reconnect_timeout_s=1.0, capture_factory=factory)
    delivered = list(source)
    assert source.stats.reconnects == 1 and source.stats.gave_up
    assert 2 <= len(delivered) <= 6 and source.stats.frames + source.stats.dropped_frames == 6


def test_a_source_blocked_in_a_read_is_released_after_the_read_returns_never_under_it():
    release = threading.Event()

    class StallingCamera(TimedCamera):
        def read(self):
            if self.read_count >= 2:
                release.wait(10)
                self.returned_while_released = self.released
                return False, None
            return super().read()

    camera = StallingCamera(frames=10, interval_s=0.01)
    source = FrameSource("/dev/video0", "camera", reconnect_timeout_s=0.0, capture_factory=lambda kind, name: camera)
    iterator = iter(source)
    next(iterator)
    time.sleep(0.1)  # the reader is now blocked in its third read
    source.stop()
    assert len(list(iterator)) <= 1  # the newest frame read before the stop may still come; then the end
    assert not camera.released, "released while a read was in progress"
    release.set()
    for _ in range(100):
        if camera.released:
            break
        time.sleep(0.02)
    assert camera.released and camera.returned_while_released is False


def test_a_video_file_served_over_http_gives_every_frame(vtest_path, tmp_path):
    """A stream that declares a frame count downloads as fast as it can: read for the newest frame, a
    loop would skip most of the file. Real OpenCV (FFmpeg) on a loopback server."""
    import functools
    import http.server
    import shutil

    served = tmp_path / "served"
    served.mkdir()
    shutil.copyfile(vtest_path, served / "vtest.avi")

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from edge_reid.sources import open_source

        source = open_source(f"http://127.0.0.1:{server.server_address[1]}/vtest.avi", reconnect_timeout_s=1.0)
        assert source.kind == "stream" and source.newest_only
        count = 0
        for _ in source:
            count += 1
            time.sleep(0.001)  # a loop slower than the download
        assert count == 795 and source.stats.dropped_frames == 0
    finally:
        server.shutdown()
        server.server_close()


def test_a_run_on_a_camera_faster_than_the_loop_counts_and_reports_the_dropped_frames(embedder, detector, vtest_frames, capsys):
    from edge_reid.cli.run_command import _print_summary
    from edge_reid.pipeline import Pipeline
    from edge_reid.runner import Runner

    class VtestCamera(TimedCamera):
        def read(self):
            ok, image = super().read()
            return (True, vtest_frames[(self.read_count - 1) % len(vtest_frames)]) if ok else (False, None)

    camera = VtestCamera(frames=150, interval_s=0.005)  # 200 fps: faster than detection + embedding here
    source = FrameSource("/dev/video0", "camera", reconnect_timeout_s=0.0, capture_factory=lambda kind, name: camera)
    summary = Runner(Pipeline(embedder, detector), [], handle_signals=False).run(source)
    assert summary.dropped_frames > 0 and summary.frames + summary.dropped_frames == camera.read_count == 150
    assert summary.to_dict()["dropped_frames"] == summary.dropped_frames
    _print_summary(summary)
    printed = unwrapped(capsys.readouterr().err)
    assert f"{summary.dropped_frames} of 150 frames read were dropped" in printed
