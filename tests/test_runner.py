"""The library's run loop (what `edge-reid run` does, for Python users of Pipeline)."""

import json
import time

import numpy as np
import pytest

from conftest import save_alice_gallery
from edge_reid.errors import OutputPathError
from edge_reid.matching.gallery import Gallery
from edge_reid.pipeline import Pipeline
from edge_reid.runner import GallerySaving, Runner
from edge_reid.sinks import EventsSink, MotSink


class Recorder:
    def __init__(self, quit_after: int | None = None) -> None:
        self.frames, self.closed, self.quit_after = [], 0, quit_after

    @property
    def quit_requested(self) -> bool:
        return self.quit_after is not None and len(self.frames) >= self.quit_after

    def write(self, result) -> None:
        self.frames.append(result.frame_index)

    def close(self) -> None:
        self.closed += 1


def test_runner_writes_sinks_saves_the_gallery_and_summarises(tmp_path, embedder, detector, vtest_path):
    events, mot, gallery_path = tmp_path / "e.jsonl", tmp_path / "m.txt", tmp_path / "g.edgereid"
    recorder = Recorder()
    runner = Runner(Pipeline(embedder, detector), [EventsSink(events), MotSink(mot), recorder],
                    gallery_saving=GallerySaving(gallery_path, every_s=1000.0), handle_signals=False)
    seen = []
    summary = runner.run(str(vtest_path), max_frames=5, on_frame=lambda result, running: seen.append(running.frames))
    assert recorder.frames == list(range(5)) and recorder.closed == 1 and seen == [1, 2, 3, 4, 5]
    records = [json.loads(line) for line in events.read_text().splitlines()]
    live = [r for r in records if not r.get("past_frame")]
    identified = [r for r in records if r["identity"] >= 1]
    assert summary.frames == 5 and summary.people == len(live) > 0 and len(identified) == len(mot.read_text().splitlines()) >= len(live)
    assert summary.tracks == summary.identities == len(Gallery.load(gallery_path)) > 0
    assert summary.embeddings > 0 and summary.embeddings_per_frame == pytest.approx(summary.embeddings / 5)
    assert not summary.interrupted and summary.fps > 0


def test_a_second_run_summarises_only_itself(embedder, detector, vtest_path):
    """One Runner, two sources: the second summary's tracks and stage times are its own run's (its
    tracks were counted against the first run's tracker: 0 or negative; its stage times averaged
    over both runs)."""
    pipeline = Pipeline(embedder, detector)
    runner = Runner(pipeline, handle_signals=False)
    first = runner.run(str(vtest_path), max_frames=30)
    assert first.tracks > 0 and first.tracks == pipeline.tracker.confirmed_total
    second = runner.run(str(vtest_path), max_frames=12)
    assert second.frames == 12 and pipeline.timer.frames == 12
    assert second.tracks == pipeline.tracker.confirmed_total > 0
    assert second.stage_ms == pipeline.timer.mean_ms()


def test_a_source_that_cannot_be_opened_fails_when_the_run_is_asked_for(embedder, detector, tmp_path):
    from edge_reid.errors import SourceError

    with pytest.raises(SourceError):
        Pipeline(embedder, detector).run(str(tmp_path / "missing.mp4"))  # not only at the first next()


@pytest.mark.parametrize("prefetch", [0, 2])
def test_a_frame_source_read_before_is_refused_not_run_empty(embedder, detector, vtest_path, prefetch):
    """A FrameSource is read once: a second run over it was an empty success with prefetch (the
    decoding thread had stopped it) and a second full read without; now a ValueError naming it."""
    from edge_reid.sources import open_source

    pipeline = Pipeline(embedder, detector)
    source = open_source(str(vtest_path))
    assert [r.frame_index for r in pipeline.run(source, max_frames=3, prefetch=prefetch)] == [0, 1, 2]
    assert source.consumed
    with pytest.raises(ValueError, match="read before: a FrameSource is read once"):
        pipeline.run(source, prefetch=prefetch)
    with pytest.raises(ValueError, match=str(vtest_path.name)):
        Runner(pipeline, handle_signals=False).run(source)
    with pytest.raises(ValueError, match="read before"):
        iter(source)


def test_a_quit_request_or_stop_ends_the_run_and_still_closes(embedder, detector, vtest_path):
    recorder = Recorder(quit_after=2)
    summary = Runner(Pipeline(embedder, detector), [recorder], handle_signals=False).run(str(vtest_path))
    assert summary.interrupted and summary.frames == 2 and recorder.closed == 1
    other = Recorder()
    runner = Runner(Pipeline(embedder, detector), [other], handle_signals=False)
    summary = runner.run(str(vtest_path), on_frame=lambda result, running: runner.stop())
    assert summary.interrupted and summary.frames == 1 and other.closed == 1


def test_errors_close_the_sinks_and_save_the_gallery(tmp_path, embedder, vtest_path):
    class Exploding:
        def detect(self, image):
            raise RuntimeError("detector exploded")

    recorder, gallery_path = Recorder(), tmp_path / "g.edgereid"
    runner = Runner(Pipeline(embedder, Exploding()), [recorder], GallerySaving(gallery_path), handle_signals=False)
    with pytest.raises(RuntimeError, match="exploded"):
        runner.run(str(vtest_path), max_frames=3)
    assert recorder.closed == 1 and gallery_path.exists()


def test_gallery_saving_refuses_a_prune_interval_below_the_minimum(tmp_path):
    with pytest.raises(ValueError, match="below the minimum of 10 s"):
        GallerySaving(tmp_path / "g.edgereid", prune_after_s=0)
    with pytest.raises(ValueError, match="> 0"):
        GallerySaving(tmp_path / "g.edgereid", every_s=0)
    assert GallerySaving(tmp_path / "g.edgereid", prune_after_s=10).prune_after_s == 10


def test_a_run_never_saves_over_a_gallery_file_its_gallery_did_not_come_from(tmp_path, embedder, detector, vtest_path):
    gallery_path = tmp_path / "people.edgereid"
    before = save_alice_gallery(embedder, gallery_path).read_bytes()
    recorder = Recorder()
    runner = Runner(Pipeline(embedder, detector), [recorder], GallerySaving(gallery_path), handle_signals=False)
    with pytest.raises(OutputPathError, match="already exists and this pipeline's gallery was not loaded from it"):
        runner.run(str(vtest_path), max_frames=3)
    assert gallery_path.read_bytes() == before and recorder.frames == [], "refused before any frame, the file untouched"

    loaded = Gallery.open(gallery_path, embedder.dim, embedder.model_id)
    Runner(Pipeline(embedder, detector, gallery=loaded), [], GallerySaving(gallery_path), handle_signals=False).run(
        str(vtest_path), max_frames=3
    )
    assert "Alice" in [identity.name for identity in Gallery.load(gallery_path).identities], "the loaded gallery was saved back"


def test_the_gallery_path_is_checked_before_the_run_and_its_folder_made(tmp_path, embedder, detector, vtest_path):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    recorder = Recorder()
    with pytest.raises(OutputPathError, match="is a folder"):
        Runner(Pipeline(embedder, detector), [recorder], GallerySaving(folder), handle_signals=False).run(str(vtest_path), max_frames=3)
    assert recorder.frames == []
    nested = tmp_path / "new" / "people.edgereid"
    Runner(Pipeline(embedder, detector), [], GallerySaving(nested), handle_signals=False).run(str(vtest_path), max_frames=3)
    assert nested.is_file()


def test_a_sink_whose_close_fails_leaves_the_other_outputs_closed_and_the_gallery_saved(tmp_path, embedder, detector, vtest_path):
    """A custom sink's close() raising RuntimeError ended the cleanup: the sinks after it stayed open, the gallery unsaved."""
    class FailsToClose(Recorder):
        def close(self) -> None:
            super().close()
            raise RuntimeError("the robot's message bus is gone")

    failing, after = FailsToClose(), Recorder()
    gallery_path = tmp_path / "g.edgereid"
    runner = Runner(Pipeline(embedder, detector), [failing, after], gallery_saving=GallerySaving(gallery_path, every_s=1000.0),
                    handle_signals=False)
    with pytest.raises(RuntimeError, match="message bus is gone"):
        runner.run(str(vtest_path), max_frames=4)
    assert failing.closed == after.closed == 1 and after.frames == [0, 1, 2, 3]
    assert gallery_path.is_file() and len(Gallery.load(gallery_path)) >= 1


def test_a_stop_while_the_gallery_lock_is_awaited_ends_the_run_before_its_first_frame(tmp_path, embedder, detector, vtest_path):
    """stop() (Ctrl-C) while the run waited for a gallery command's lock was wiped when the run began: it ran to the end.
    Then the stop waited for the lock's holder (up to 60 s) before taking effect."""
    import threading

    from edge_reid.matching.gallery_lock import gallery_lock

    gallery_path = tmp_path / "g.edgereid"
    recorder = Recorder()
    runner = Runner(Pipeline(embedder, detector), [recorder], gallery_saving=GallerySaving(gallery_path, every_s=1000.0),
                    handle_signals=False)
    holding, release = threading.Event(), threading.Event()

    def gallery_command() -> None:
        with gallery_lock(gallery_path, "edge-reid gallery rename"):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=gallery_command)
    holder.start()
    holding.wait(10)
    threading.Timer(0.3, runner.stop).start()
    started = time.monotonic()
    summary = runner.run(str(vtest_path), max_frames=30)
    waited = time.monotonic() - started
    release.set()
    holder.join()
    assert summary.interrupted and summary.frames == 0 and recorder.frames == [] and recorder.closed == 1
    assert waited < 3.0, f"the stop ends the wait for the lock at once, not when its holder lets go ({waited:.1f} s)"
    assert not gallery_path.exists(), "without the lock nothing is saved"


def test_a_gallery_file_changed_during_a_run_is_not_saved_over(tmp_path, embedder, detector, vtest_path):
    """Another program's Gallery.save during a run was overwritten by the run's next save: its change lost."""
    from edge_reid.errors import OutputWriteError

    gallery_path = tmp_path / "people.edgereid"
    Gallery(embedder.dim, model_id=embedder.model_id).save(gallery_path)
    pipeline = Pipeline(embedder, detector, gallery=Gallery.open(gallery_path, embedder.dim, embedder.model_id))

    def other_program(result, running) -> None:
        if result.frame_index == 2:
            theirs = Gallery.load(gallery_path)
            theirs.enroll("Alice", pipeline.embedder.embed_crops([result.image[100:300, 100:180]]))
            theirs.save(gallery_path)

    runner = Runner(pipeline, [], gallery_saving=GallerySaving(gallery_path, every_s=1e-6), handle_signals=False)
    with pytest.raises(OutputWriteError, match="changed by another program during this run: not saved over") as caught:
        runner.run(str(vtest_path), max_frames=6, on_frame=other_program)
    assert Gallery.load(gallery_path).find("Alice") is not None, "their change is kept"
    side = sorted(tmp_path.glob("people.run-*.edgereid"))
    assert len(side) == 1 and str(side[0]) in str(caught.value) and len(Gallery.load(side[0])) == len(pipeline.gallery)


def test_save_gallery_outside_a_run_holds_the_lock(tmp_path, embedder, detector):
    from edge_reid.matching.gallery_lock import RUN_HOLDER, GalleryInUseError, gallery_lock

    gallery_path = tmp_path / "g.edgereid"
    runner = Runner(Pipeline(embedder, detector), [], gallery_saving=GallerySaving(gallery_path), handle_signals=False)
    with gallery_lock(gallery_path, RUN_HOLDER), pytest.raises(GalleryInUseError, match="in use by edge-reid run"):
        runner.save_gallery()
    assert not gallery_path.exists()
    runner.save_gallery()
    assert gallery_path.is_file()


def test_saving_to_a_new_file_is_not_diverted_by_a_change_to_the_file_read(tmp_path, embedder, detector, vtest_path):
    """Loaded from people.edgereid, saved to site2.edgereid: another program's save of people.edgereid made the run
    write site2.run-*.edgereid and fail, though site2.edgereid was never anyone else's."""
    people, site2 = tmp_path / "people.edgereid", tmp_path / "site2.edgereid"
    Gallery(embedder.dim, model_id=embedder.model_id).save(people)
    pipeline = Pipeline(embedder, detector, gallery=Gallery.open(people, embedder.dim, embedder.model_id))

    def other_program(result, running) -> None:
        if result.frame_index == 1:
            Gallery(embedder.dim, model_id=embedder.model_id).save(people)

    runner = Runner(pipeline, [], gallery_saving=GallerySaving(site2, every_s=1e-6), handle_signals=False)
    summary = runner.run(str(vtest_path), max_frames=4, on_frame=other_program)
    assert summary.frames == 4 and site2.is_file() and not list(tmp_path.glob("site2.run-*"))


def test_a_frame_source_subclass_holding_frames_in_memory_runs(embedder, detector, vtest_frames):
    """A FrameSource subclass that skips FrameSource.__init__ (benchmarks/run_modes.py --in-memory)
    failed with AttributeError once sources remembered being read."""
    from edge_reid.sources import Frame, FrameSource

    class InMemory(FrameSource):  # as benchmarks/run_modes.py's FramesInMemory
        def __init__(self, frames):
            self.frames = frames
            self._stop = False

        def __iter__(self):
            yield from self.frames

        def stop(self):
            self._stop = True

        def close(self):
            pass

    source = InMemory([Frame(i, i / 10.0, image) for i, image in enumerate(vtest_frames[:3])])
    assert [r.frame_index for r in Pipeline(embedder, detector).run(source, prefetch=0)] == [0, 1, 2]


def test_a_gallery_kept_in_memory_is_pruned_during_a_run_when_asked(embedder, detector, vtest_path, monkeypatch):
    """Without a gallery file nothing was ever pruned: a camera run for weeks kept one identity per stranger."""
    import edge_reid.runner as runner_module

    monkeypatch.setattr(runner_module, "MEMORY_PRUNE_EVERY_S", 0.0)
    pipeline = Pipeline(embedder, detector)
    stranger = pipeline.gallery.add(np.eye(pipeline.gallery.dim, dtype=np.float32)[:1], timestamp=1.0)  # seen long ago
    Runner(pipeline, [], handle_signals=False, prune_after_s=60).run(str(vtest_path), max_frames=12)
    held = pipeline.identities.held_identities()
    assert stranger not in pipeline.gallery, "the stranger not seen since 1970 is forgotten"
    assert held and all(identity in pipeline.gallery for identity in held), "the people in view keep theirs"
    with pytest.raises(ValueError, match="below the minimum"):
        Runner(pipeline, [], handle_signals=False, prune_after_s=1)
    with pytest.raises(ValueError, match="GallerySaving"):
        Runner(pipeline, [], GallerySaving("g.edgereid"), handle_signals=False, prune_after_s=60)
