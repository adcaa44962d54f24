"""The identity gallery: people known by name or by sight, each with a bounded history of embeddings.

How an identity is represented and scored (the DeepStream tracker's
``reidHistorySize`` idea):

- Each identity owns up to ``history_size`` *recent* embeddings (sightings) plus
  any number of *enrolled* embeddings (from ``edge-reid gallery enroll``),
  all rows of one :class:`~edge_reid.matching.store.EmbeddingStore`.
- The similarity of a query to an identity is the **best** (maximum) cosine
  similarity over that identity's embeddings. Best rather than mean, because a
  person looks different from the front, the back and the side: a mean
  template of those views matches none of them well, while the best match
  finds the stored view closest to the current one.
- A matched sighting is appended to the identity's recent embeddings only when
  it is *novel*: its best similarity to the identity is below ``novelty``.
  Near-duplicates from consecutive frames would otherwise fill the history
  with one view. When the history is full the oldest recent embedding is
  dropped; enrolled embeddings are never dropped.

Per call to :meth:`Gallery.match` (the people of one frame) each query gets at
most one identity and no identity is given twice
(:func:`~edge_reid.matching.assignment.assign_unique`). Candidates come from the
fused top-k search (:func:`~edge_reid.matching.topk.topk_cosine`) over all
stored embeddings, so the (queries x embeddings) score matrix is never built.

Times (``first_seen``, ``last_seen``, pruning) are seconds; by default the wall
clock (``time.time()``, Unix seconds), so that a gallery saved by one run and
loaded by the next keeps meaningful times. The wall clock can jump (a Jetson without an RTC
battery boots with a stale time that NTP later moves on by years; an operator sets it back; a VM
resumes), so within a process the time an identity has gone unseen is measured on the monotonic
clock (:meth:`Gallery.prune` with ``now=None``): a jump neither forgets
every stranger at once nor stops pruning. ``last_seen`` never moves backwards, and a save moves
it forward to the wall clock's time less the time unseen, so the next run reads how long ago each
identity was seen even after a forward jump. A time given is checked as it comes in
(:func:`check_timestamp`): one the gallery file could not hold (negative, NaN, after
:data:`~edge_reid.values.MAX_TIMESTAMP_S`, i.e. milliseconds or nanoseconds)
is refused there, not left to make a saved gallery that cannot be loaded.

Persistence: :meth:`Gallery.save` / :meth:`Gallery.load` use the versioned,
checksummed, atomically written ``.edgereid`` file of
:mod:`edge_reid.matching.gallery_file`. The embedding model's identity
(:attr:`edge_reid.embedder.Embedder.model_id`) is stored with the gallery and a
gallery made with another model is refused: embeddings of different models are
not comparable.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import unicodedata
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar, cast

import numpy as np

from edge_reid.defaults import PRUNE_MIN_AGE_S
from edge_reid.errors import DataError, GalleryWarning, caller_stacklevel
from edge_reid.jit import lazy_cached_njit
from edge_reid.matching.gallery_file import GALLERY_KIND, read_gallery, write_gallery_file
from edge_reid.matching.store import EmbeddingStore
from edge_reid.thresholds import at_least
from edge_reid.unit_vectors import check_unit_rows
from edge_reid.values import MAX_TIMESTAMP_S, check_seconds, is_integer, not_seconds_hint

#: Extra candidate identities per query beyond the number of queries (see :meth:`Gallery.match`).
EXTRA_CANDIDATES = 4


@dataclass
class Identity:
    """One person known to the gallery.

    Attributes:
        identity_id: stable integer id, from 1 upwards in order of creation, never reused.
        name: optional label (e.g. an enrolled person's name).
        first_seen: time in seconds of creation (enrollment or first sighting).
        last_seen: time in seconds of the latest sighting (or enrollment).
        count: number of sightings and enrolled images.
    """

    identity_id: int
    name: str | None
    first_seen: float
    last_seen: float
    count: int = 1


@dataclass(frozen=True)
class MatchResult:
    """Identities given to N query embeddings.

    Attributes:
        identity_ids: (N,) int64 identity id per query; -1 when no identity
            matched and none was created.
        similarities: (N,) float32 best cosine similarity in [-1, 1] to the
            matched identity's embeddings before the update; 0 for new or unmatched queries.
        is_new: (N,) bool, True where the query created a new identity.
    """

    identity_ids: np.ndarray
    similarities: np.ndarray
    is_new: np.ndarray


@dataclass(frozen=True)
class GallerySnapshot:
    """A copy of a gallery as its file holds it (:meth:`Gallery.snapshot`), to be written by :meth:`Gallery.write_snapshot`.

    Attributes:
        header: the file's JSON header (:meth:`Gallery.metadata` and ``saved_at``, seconds since 1970).
        payload: (rows, D) embeddings in storage dtype, each identity's enrolled then recent rows, in header order.
        number: this gallery's count of snapshots when it was taken (1 for the first), so that a later one is never
            written over by an earlier (:meth:`Gallery.write_snapshot`).
    """

    header: dict
    payload: np.ndarray
    number: int = 0


@dataclass
class _Members:
    """Store ids of one identity's embeddings."""

    enrolled: list[int] = field(default_factory=list)
    recent: deque = field(default_factory=deque)

    def all(self) -> list[int]:
        return [*self.enrolled, *self.recent]


@lazy_cached_njit()  # Numba is imported at the first match, not by load/list/rename/save
def _first_distinct_owners(owners: np.ndarray, row_scores: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> int:
    """Per query, the first ``k`` distinct owners of its best rows (rows sorted by descending score).

    Writes ids/scores (Q, k) (unfilled slots keep -1 / -inf) and returns the
    smallest number of distinct owners found over the queries (capped at k).
    """
    n_queries, n_rows = owners.shape
    k = ids.shape[1]
    fewest = k
    for query in range(n_queries):
        found = 0
        for r in range(n_rows):
            owner = owners[query, r]
            seen = False
            for j in range(found):
                if ids[query, j] == owner:
                    seen = True
                    break
            if seen:
                continue
            ids[query, found] = owner
            scores[query, found] = row_scores[query, r]
            found += 1
            if found == k:
                break
        fewest = min(fewest, found)
    return fewest


#: Cosine similarity at or above which an enrolled embedding is the same view as one already
#: enrolled (the same photo again: only rounding noise between them), and is not stored twice.
SAME_VIEW_COSINE = 0.9999


def _same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (by their absolute spelling: the file may not exist)."""
    return os.path.abspath(a) == os.path.abspath(b)


def check_name(name: str) -> None:
    """Refuse a person's name holding control characters (line breaks, tabs, terminal escape codes).

    Raises:
        ValueError: the message names the first such character.
    """
    bad = next((c for c in name if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise ValueError(f"a name cannot hold control characters such as {bad!r}: {name!r}")


#: Rows of room beyond the gallery's size that :meth:`Gallery.snapshot` allocates before taking the lock, for rows
#: added meanwhile (a frame adds a few).
SNAPSHOT_SPARE_ROWS = 256

#: Seconds by which the wall clock must have moved ahead of the monotonic clock for :meth:`Gallery.save`
#: to move a ``last_seen`` forward: the two drift apart by milliseconds while NTP slews the wall clock.
CLOCK_JUMP_S = 1.0


def _check_similarity(name: str, value: float) -> None:
    if not -1.0 <= float(value) <= 1.0:  # also refuses NaN
        raise ValueError(f"{name} must be a cosine similarity in [-1, 1], got {value}")


def check_timestamp(value: float | None, name: str = "timestamp") -> float:
    """A time given to the gallery, seconds since 1970, as a float; None: now (``time.time()``).

    Every method taking a time checks it here, so that the gallery holds no time its file cannot
    (:func:`~edge_reid.matching.gallery_file.read_gallery` refuses it: the gallery would be saved but never load).

    Raises:
        TypeError: not a real number (text such as ``"0.1"``, a bool).
        ValueError: NaN or infinite, negative, or after :data:`~edge_reid.values.MAX_TIMESTAMP_S`
            (1e11 s: milliseconds or nanoseconds since 1970, the message says so).
    """
    if value is None:
        return time.time()
    seconds = check_seconds(value, name)
    if not 0.0 <= seconds <= MAX_TIMESTAMP_S:
        why = not_seconds_hint(seconds) or "before 1970"
        raise ValueError(f"{name} must be seconds since 1970, from 0 to {MAX_TIMESTAMP_S:g}, got {value!r}: {why}")
    return seconds


def canonical_name(name: str) -> str:
    """A person's name as stored and compared: surrounding spaces removed, Unicode in its composed form
    (NFC, Unicode Standard Annex #15), so "José" typed with one accented letter or as "e" + a combining
    accent is one name, not two identities.

    >>> canonical_name(" Jose\u0301 ") == "Jos\u00e9"
    True
    """
    return unicodedata.normalize("NFC", name.strip())


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _locked(method: _Method) -> _Method:
    """Run a :class:`Gallery` method holding the gallery's :attr:`~Gallery.lock`; the method keeps its
    signature for type checkers."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)

    return cast(_Method, locked)


class Gallery:
    """Identities with bounded embedding histories, matched one-to-one per frame.

    Args:
        dim: embedding length D.
        threshold: lowest cosine similarity in [-1, 1] that counts as the same person.
        history_size: most recent (non-enrolled) embeddings kept per identity, >= 1.
        novelty: a matched sighting joins the history only when its best
            similarity to the identity is below this (1.0: every sighting).
        dtype: embedding storage, ``np.float32`` or ``np.float16`` (half the memory).
        model_id: identity of the embedding model (``Embedder.model_id``), stored on save.
        model_name: human-readable model name for messages (e.g. the ONNX file name).

    Threads: every method holds :attr:`lock` (a re-entrant lock) while it runs, so one gallery may
    be shared, e.g. a kiosk's UI thread enrolling and removing people while a camera thread's
    :class:`~edge_reid.pipeline.Pipeline` matches against it (the pipeline holds the lock over each
    frame's whole identity step). Hold ``with gallery.lock:`` yourself to make several calls one step.
    :meth:`write_snapshot` and :meth:`changed_on_disk` are the exceptions: they hold only a lock of the file's
    writes (one at a time), so that a write in the background holds up no frame.

    Raises:
        ValueError: ``dim`` < 1, ``history_size`` < 1, ``threshold`` or ``novelty`` not a cosine
            similarity in [-1, 1], or a dtype other than float32 and float16.
        TypeError: ``dtype`` is not a dtype numpy knows.
    """

    def __init__(
        self,
        dim: int,
        threshold: float = 0.6,
        history_size: int = 8,
        novelty: float = 0.9,
        dtype: type | np.dtype = np.float32,
        model_id: str | None = None,
        model_name: str | None = None,
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        for name, value in (("threshold", threshold), ("novelty", novelty)):
            _check_similarity(name, value)
        self.dim = int(dim)
        self.threshold = float(threshold)
        self.history_size = int(history_size)
        self.novelty = float(novelty)
        self.model_id = model_id
        self.model_name = model_name
        self._store = EmbeddingStore(self.dim, dtype=dtype)
        self._identities: dict[int, Identity] = {}
        self._members: dict[int, _Members] = {}
        self._next_id = 1
        #: held by every method while it runs (re-entrant); see the class docstring
        self.lock = threading.RLock()
        #: the file this gallery was last loaded from or saved to (None: never), so that a run saving
        #: it can tell its own file from someone else's (:class:`~edge_reid.runner.Runner`).
        self.source_path: Path | None = None
        self._source_stamp: tuple[int, int] | None = None  # (mtime ns, size) of that file when read or written
        self._start_clocks()
        self._init_writing()

    def _init_writing(self) -> None:
        """What orders writes of the file: a lock held over each write and the record of it (the source fields),
        taken after :attr:`lock` when both are held; the snapshots taken and the number of the one in the file."""
        self._write_lock = threading.Lock()
        self._snapshots = 0
        self._source_number = 0

    def _start_clocks(self) -> None:
        """Read both clocks now: identities not seen since are aged from here (:meth:`_unseen_s`)."""
        self._origin = (time.time(), time.monotonic())  # (wall, monotonic) when made, loaded or unpickled
        #: identity id -> monotonic time of its latest sighting at the default time, or None when its
        #: latest was a time the caller gave (their clock: aged by the wall clock). Absent: not seen since _origin.
        self._seen_at: dict[int, float | None] = {}

    def _mark_seen(self, identity: Identity, when: float, given: bool) -> None:
        """Record a sighting at ``when`` (``given``: a time the caller gave, else the default, now)."""
        if not given:
            self._seen_at[identity.identity_id] = time.monotonic()
        elif when >= identity.last_seen:
            self._seen_at[identity.identity_id] = None
        identity.last_seen = max(identity.last_seen, when)

    def __getstate__(self) -> dict:
        """Pickling and deep copies leave the lock out (a lock cannot be copied); the copy gets its own."""
        state = self.__dict__.copy()
        del state["lock"], state["_write_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()
        self._start_clocks()  # a monotonic time means nothing in another process
        self._init_writing()

    def _remember_source(self, path: str | os.PathLike) -> None:
        self.source_path = Path(path)
        stat = self.source_path.stat()
        self._source_stamp = (stat.st_mtime_ns, stat.st_size)

    def changed_on_disk(self) -> bool:
        """Whether :attr:`source_path` was written by someone else since this gallery read or wrote it
        (its time or size differ), so that saving would undo their change. False when there is no such file.
        Waits for a :meth:`write_snapshot` of this gallery under way (its file is its own once recorded)."""
        with self._write_lock:
            if self.source_path is None or not self.source_path.exists():
                return False
            stat = self.source_path.stat()
            return (stat.st_mtime_ns, stat.st_size) != self._source_stamp

    # -- reading ------------------------------------------------------------------------------
    @_locked
    def __len__(self) -> int:
        return len(self._identities)

    @_locked
    def __contains__(self, identity_id: object) -> bool:
        return identity_id in self._identities

    @property
    def identities(self) -> list[Identity]:
        """All identities, in order of creation."""
        with self.lock:
            return list(self._identities.values())

    @property
    def store(self) -> EmbeddingStore:
        """The embeddings of all identities (labels = identity ids). Read only."""
        return self._store

    @property
    def dtype(self) -> np.dtype:
        """Embedding storage dtype."""
        return self._store.dtype

    @_locked
    def get(self, identity_id: int) -> Identity:
        """The identity with this id. Raises KeyError."""
        return self._identities[int(identity_id)]

    def find(self, name: str) -> Identity | None:
        """The first identity called ``name`` (compared as :func:`canonical_name`), or None."""
        return next(iter(self.named(name)), None)

    @_locked
    def named(self, name: str) -> list[Identity]:
        """Every identity called ``name`` (compared as :func:`canonical_name`: surrounding spaces and
        Unicode composition ignored), oldest first: names are not unique when given by :meth:`rename`."""
        wanted = canonical_name(name)
        return [i for i in self._identities.values() if i.name is not None and canonical_name(i.name) == wanted]

    @_locked
    def enrollment_target(self, name: str) -> Identity | None:
        """The identity that enrolling under ``name`` adds to: the one so named, or None (a new one).

        Raises:
            ValueError: two or more identities have that name (which one is meant is not known; the
                message gives their ids and how to rename one).
        """
        same = self.named(name)
        if len(same) > 1:
            ids = [str(i.identity_id) for i in same]
            raise ValueError(
                f"{len(same)} identities are named {name.strip()!r} (ids {', '.join(ids)}): which one to add to is not "
                f"known; give one another name first, in Python with Gallery.rename (edge-reid gallery rename --id {ids[-1]} --name ...)"
            )
        return same[0] if same else None

    @_locked
    def embedding_counts(self, identity_id: int) -> tuple[int, int]:
        """(enrolled, recent) embeddings stored for an identity. Raises KeyError."""
        members = self._members[int(identity_id)]
        return len(members.enrolled), len(members.recent)

    @_locked
    def embeddings(self, identity_id: int) -> np.ndarray:
        """(E, D) float32 copy of an identity's embeddings: enrolled first, then recent oldest first."""
        rows = [self._store.row_of(store_id) for store_id in self._members[int(identity_id)].all()]
        return self._store.vectors[rows].astype(np.float32)

    # -- changing -----------------------------------------------------------------------------
    def _check(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings, np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"embeddings must be (N, {self.dim}) or ({self.dim},), got {np.shape(embeddings)}")
        return x

    def _check_queries(self, embeddings: np.ndarray) -> np.ndarray:
        """:meth:`_check`, and every row of unit length (:func:`~edge_reid.unit_vectors.check_unit_rows`):
        inner products are cosine similarities only for unit vectors, and the thresholds are cosine similarities."""
        q = self._check(embeddings)
        check_unit_rows(q)
        return q

    def _undo_new_identity(self, identity: Identity) -> None:
        """Remove an identity just made whose embeddings were refused, and give its id back: nothing
        refers to it yet, and a refused embedding must not use up an id (ids count up from 1)."""
        self.remove(identity.identity_id)
        self._next_id = identity.identity_id

    def _new_identity(self, name: str | None, timestamp: float, count: int) -> Identity:
        identity = Identity(self._next_id, name, timestamp, timestamp, count)
        self._next_id += 1
        self._identities[identity.identity_id] = identity
        self._members[identity.identity_id] = _Members()
        return identity

    def _add_recent(self, identity_id: int, embedding: np.ndarray) -> None:
        members = self._members[identity_id]
        store_id = int(self._store.add(embedding, labels=identity_id)[0])  # validates before evicting
        if len(members.recent) >= self.history_size:
            self._store.remove(members.recent.popleft())
        members.recent.append(store_id)

    @_locked
    def novel_views(self, embeddings: np.ndarray) -> np.ndarray:
        """The views of one person worth keeping as a new identity's recent history, as :meth:`observe`
        keeps them: from the newest back, a row only when its best cosine similarity to the rows kept is
        below ``novelty``, at most ``history_size`` rows.

        Args:
            embeddings: (M, D) float32 L2-normalised embeddings of one person, oldest first (e.g. a
                track's clean history).

        Returns:
            (K, D) float32, 1 <= K <= min(M, ``history_size``), oldest first; the newest row always kept.

        Raises:
            ValueError: not (M, D) with M >= 1, or a row not of unit length (the novelty test compares
                inner products: a vector's length would decide which views are kept).
        """
        rows = self._check(embeddings)
        if rows.shape[0] == 0:
            raise ValueError("need at least one embedding")
        check_unit_rows(rows)
        repeats = at_least(rows @ rows.T, self.novelty)  # (M, M): which views another one already covers
        kept = [rows.shape[0] - 1]
        for index in range(rows.shape[0] - 2, -1, -1):
            if len(kept) == self.history_size:
                break
            if not repeats[index, kept].any():
                kept.append(index)
        return rows[sorted(kept)]

    @_locked
    def add(self, embedding: np.ndarray, name: str | None = None, timestamp: float | None = None) -> int:
        """Create an identity from one embedding; returns its id.

        Args:
            embedding: (D,) or (M, D) float embeddings of one person; the last ``history_size`` rows become
                the identity's recent history (see :meth:`enroll` for permanent ones), its ``count`` is M.
            name: stored as :func:`canonical_name` (blank: no name).
            timestamp: its first and last sighting, seconds since 1970 (default: now).

        Raises:
            ValueError: wrong shape, or non-finite/zero embeddings; a name holding control characters
                (nothing is created then: the next identity takes the id this one would have had); a
                ``timestamp`` that is not a time in seconds since 1970 (:func:`check_timestamp`).
            TypeError: ``timestamp`` is not a number.
        """
        when = check_timestamp(timestamp)
        x = self._check(embedding)
        if x.shape[0] == 0:
            raise ValueError("need at least one embedding")
        if name is not None:
            check_name(name)
            name = canonical_name(name) or None
        identity = self._new_identity(name, when, x.shape[0])
        self._mark_seen(identity, when, timestamp is not None)
        try:
            for row in x[-self.history_size :]:
                self._add_recent(identity.identity_id, row)
        except ValueError:
            self._undo_new_identity(identity)
            raise
        return identity.identity_id

    @_locked
    def enroll(self, name: str, embeddings: np.ndarray, timestamp: float | None = None) -> int:
        """Add permanent embeddings (e.g. of photos) to the identity called ``name``; returns its id.

        Creates the identity when no identity has that name. Enrolled
        embeddings are never dropped from the history, and named identities
        are not pruned by default. An embedding that is the same view as one already enrolled for
        that identity, or as an earlier row (:data:`SAME_VIEW_COSINE`: the same photo again), is
        not stored twice.

        Args:
            name: the person's name (compared and stored as :func:`canonical_name`).
            embeddings: (M, D) or (D,) float embeddings, e.g. ``Embedder.embed_crops(photos)``.
            timestamp: when, seconds since 1970 (default: now).

        Raises:
            ValueError: empty name, wrong shape, or non-finite/zero embeddings; two or more
                identities have that name (which one is meant is not known: rename one first); a
                ``timestamp`` that is not a time in seconds since 1970 (:func:`check_timestamp`).
            TypeError: ``timestamp`` is not a number.
        """
        when = check_timestamp(timestamp)
        if not name or not name.strip():
            raise ValueError("an enrolled identity needs a non-empty name")
        check_name(name)
        name = canonical_name(name)
        identity = self.enrollment_target(name)
        x = self._check(embeddings)
        if x.shape[0] == 0:
            raise ValueError("need at least one embedding")
        if not np.isfinite(x).all():  # before the same-view filter, where a NaN row compares False and vanished
            raise ValueError("embeddings contain NaN or Inf")
        created = identity is None
        if identity is not None:
            x = self._new_views(x, self.embeddings(identity.identity_id)[: len(self._members[identity.identity_id].enrolled)])
            if x.shape[0] == 0:
                return identity.identity_id  # every photo is already enrolled
        else:
            x = self._new_views(x, np.zeros((0, self.dim), np.float32))
            identity = self._new_identity(name, when, 0)
        try:
            store_ids = self._store.add(x, labels=identity.identity_id)
        except ValueError:
            if created:
                self._undo_new_identity(identity)
            raise
        members = self._members[identity.identity_id]
        members.enrolled.extend(int(i) for i in store_ids)
        identity.count += x.shape[0]
        self._mark_seen(identity, when, timestamp is not None)
        return identity.identity_id

    @staticmethod
    def _new_views(x: np.ndarray, enrolled: np.ndarray) -> np.ndarray:
        """The rows of ``x`` that are not the same view as an enrolled one (cosine similarity >=
        :data:`SAME_VIEW_COSINE`) nor a repeat of an earlier row (equal to 4 decimals): the same
        photo enrolled again. Vectorised (rows are compared in blocks, never one by one)."""
        unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        _, first = np.unique(np.round(unit, 4), axis=0, return_index=True)
        keep = np.zeros(unit.shape[0], bool)
        keep[first] = True
        if enrolled.size:
            known = enrolled.astype(np.float32)
            for start in range(0, unit.shape[0], 4096):
                block = slice(start, start + 4096)
                keep[block] &= (unit[block] @ known.T).max(axis=1) < SAME_VIEW_COSINE
        return x[keep]

    @_locked
    def rename(self, identity_id: int, name: str | None) -> None:
        """Set an identity's name as :func:`canonical_name` (None or blank clears it).

        Raises:
            KeyError: no such identity.
            ValueError: the name holds control characters (a line break, an escape code: names are
                printed on terminals and written on video frames).
        """
        check_name(name or "")
        self._identities[int(identity_id)].name = canonical_name(name) or None if name is not None else None

    @_locked
    def remove(self, identity_id: int) -> Identity:
        """Delete an identity and its embeddings; returns it. Raises KeyError."""
        identity = self._identities.pop(int(identity_id))
        members = self._members.pop(int(identity_id))
        self._store.remove(members.all())
        self._seen_at.pop(int(identity_id), None)
        return identity

    @_locked
    def prune(
        self, max_age_s: float, now: float | None = None, keep_named: bool = True, keep: Iterable[int] = ()
    ) -> list[int]:
        """Remove identities not seen for more than ``max_age_s`` seconds; returns their ids.

        An identity seen within the last :data:`PRUNE_MIN_AGE_S` seconds, or listed in
        ``keep`` (e.g. held by a live track), is never removed, whatever ``max_age_s``:
        otherwise a person in view would lose their identity and be re-created as a new one.

        With ``now=None`` the time unseen does not follow jumps of the wall clock (NTP setting a
        stale clock right, an operator setting it back): for an identity seen in this process at
        the default time, it is the monotonic time since that sighting; for one not seen since the
        gallery was made or loaded, its wall-clock age then (0 when its ``last_seen`` is after the
        clock of that moment: the clock is behind the one that saved it) plus the monotonic time
        since; for one whose latest sighting came with a time of the caller's, ``time.time() - last_seen``.
        A jump of the wall clock between two runs cannot be told from time passing: a gallery saved
        on a clock years behind looks years old to a run on the right one.

        Args:
            max_age_s: largest allowed time unseen (``now - last_seen`` when ``now`` is given), seconds.
            now: current time in seconds since 1970, on the clock of the times given to the gallery
                (default: now, measured as above).
            keep_named: never prune identities with a name (enrolled people).
            keep: identity ids never to prune.

        Raises:
            ValueError: ``now`` is not a time in seconds since 1970 (:func:`check_timestamp`).
            TypeError: ``now`` is not a number.
        """
        given = now is not None
        now = check_timestamp(now, "now")
        oldest = max(float(max_age_s), PRUNE_MIN_AGE_S)
        kept = {int(i) for i in keep}
        clock = time.monotonic()
        stale = [
            i.identity_id
            for i in self._identities.values()
            if (now - i.last_seen if given else self._unseen_s(i, now, clock)) > oldest
            and not (keep_named and i.name) and i.identity_id not in kept
        ]
        for identity_id in stale:
            self.remove(identity_id)
        return stale

    def _unseen_s(self, identity: Identity, wall: float, clock: float) -> float:
        """Seconds ``identity`` has gone unseen at wall-clock time ``wall`` and monotonic time ``clock`` (see :meth:`prune`)."""
        if identity.identity_id not in self._seen_at:  # not seen since the gallery was made or loaded
            origin_wall, origin_clock = self._origin
            return max(0.0, origin_wall - identity.last_seen) + (clock - origin_clock)
        seen = self._seen_at[identity.identity_id]
        return wall - identity.last_seen if seen is None else clock - seen  # None: the caller's time

    def _record_sighting(self, identity_id: int, when: float, novel_embedding: np.ndarray | None, given: bool) -> None:
        identity = self._identities[identity_id]
        self._mark_seen(identity, when, given)
        identity.count += 1
        if novel_embedding is not None:
            self._add_recent(identity_id, novel_embedding)

    @_locked
    def similarity(self, identity_id: int, embeddings: np.ndarray) -> np.ndarray:
        """Best cosine similarity of each of N embeddings to one identity's stored embeddings.

        Args:
            identity_id: an identity of this gallery.
            embeddings: (N, D) or (D,) float32 L2-normalised.

        Returns:
            (N,) float32 in [-1, 1].

        Raises:
            KeyError: unknown identity. ValueError: wrong shape, or a row not of unit length.
        """
        q = self._check_queries(embeddings)
        rows = [self._store.row_of(store_id) for store_id in self._members[int(identity_id)].all()]
        stored = self._store.vectors[rows].astype(np.float32)
        return (q @ stored.T).max(axis=1).astype(np.float32)

    @_locked
    def observe(
        self, identity_id: int, embedding: np.ndarray | None = None, timestamp: float | None = None, threshold: float | None = None
    ) -> float | None:
        """Record a sighting of a known identity (e.g. by a tracker that already knows who it is).

        Updates ``last_seen`` and ``count``. With an embedding, it joins the identity's
        recent history when it is novel (best similarity below ``novelty``) yet still
        the same person (at least ``threshold``): a view that looks like someone else
        is never stored.

        Args:
            identity_id: an identity of this gallery.
            embedding: (D,) float32 L2-normalised embedding of a clean crop, or None.
            timestamp: time of the sighting in seconds (default: wall clock).
            threshold: least similarity for the embedding to be stored (default: the gallery's threshold).

        Returns:
            The embedding's best cosine similarity to the identity before the update, or None without one.

        Raises:
            KeyError: unknown identity. ValueError: not one embedding ((D,) or (1, D)), a row not of unit
            length, a ``threshold`` outside [-1, 1], or a ``timestamp`` that is not a time in seconds since
            1970 (:func:`check_timestamp`). TypeError: ``timestamp`` is not a number.
        """
        if threshold is not None:
            _check_similarity("threshold", threshold)
        when = check_timestamp(timestamp)
        if embedding is None:
            self._record_sighting(int(identity_id), when, None, timestamp is not None)
            return None
        vectors = self._check(embedding)
        if vectors.shape[0] != 1:
            raise ValueError(f"observe takes one embedding, (D,) or (1, D), got {np.shape(embedding)}: observe each sighting on its own")
        vector = vectors[0]
        best = float(self.similarity(identity_id, vector)[0])
        lowest = self.threshold if threshold is None else float(threshold)
        novel_and_same = bool(at_least(best, lowest)) and not bool(at_least(best, self.novelty))  # in float32, as scores are
        self._record_sighting(int(identity_id), when, vector if novel_and_same else None, timestamp is not None)
        return best

    # -- matching -----------------------------------------------------------------------------
    @_locked
    def search(self, embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` identities most similar to each query, by best similarity over their embeddings.

        Args:
            embeddings: (N, D) float32 L2-normalised queries.
            k: identities per query, >= 1.

        Returns:
            (scores (N, k') float32 descending, identity_ids (N, k') int64), with
            k' = min(k, len(self)).

        Raises:
            ValueError: ``k`` not an integer >= 1, or ``embeddings`` not (N, D) rows of unit length.

        Exact: the distinct owners of a query's best r rows, in order of first
        appearance, are exactly its best identities (an identity's best row comes
        before every row of a worse identity). The search starts at r = 2k rows
        (r = k while every identity has one row) and widens (x4) only while some
        query has fewer than k distinct owners, so the common case costs one
        top-2k row search whatever the history size.
        """
        if not is_integer(k) or k < 1:
            raise ValueError(f"k must be >= 1 identities per query (an integer), got {k!r}")
        q = self._check_queries(embeddings)
        k_ids = min(int(k), len(self))
        scores = np.full((q.shape[0], k_ids), -np.inf, np.float32)
        ids = np.full((q.shape[0], k_ids), -1, np.int64)
        if k_ids == 0 or q.shape[0] == 0:
            return scores, ids
        from edge_reid.matching.topk import topk_cosine  # Numba: imported by the first search, not by load/list/save

        total_rows = len(self._store)
        # One row per identity (no histories yet): the best k rows are the best k identities.
        k_rows = min(total_rows, k_ids if total_rows == len(self) else 2 * k_ids)
        while True:
            top = topk_cosine(q, self._store.vectors, k_rows)
            owners = self._store.labels[top.indices]
            found = _first_distinct_owners(owners, top.scores, ids, scores)
            if k_rows >= total_rows or found >= k_ids:
                break
            k_rows = min(total_rows, 4 * k_rows)
        return scores, ids

    @_locked
    def match(
        self, embeddings: np.ndarray, timestamp: float | None = None, update: bool = True, create: bool = True
    ) -> MatchResult:
        """Give each of N embeddings an identity.

        Args:
            embeddings: (N, D) float32 L2-normalised embeddings, e.g. the people of one frame.
            timestamp: time of the sighting in seconds (default: wall clock).
            update: record the sighting (last seen, count, novel embeddings into the history).
            create: make a new identity for each unmatched embedding.

        Returns:
            :class:`MatchResult`.

        Each query's candidates are its ``N + 4`` best identities: enough for an
        exact one-to-one assignment, since the other N - 1 queries can take at
        most N - 1 of them.

        Raises:
            ValueError: ``embeddings`` is not (N, D) rows of unit length; a ``timestamp`` that is not a
                time in seconds since 1970 (:func:`check_timestamp`). TypeError: ``timestamp`` is not a number.
        """
        when = check_timestamp(timestamp)
        if np.ndim(embeddings) != 2:
            raise ValueError(f"embeddings must be (N, {self.dim}), got {np.shape(embeddings)}")
        q = self._check_queries(embeddings)
        count = q.shape[0]
        identity_ids = np.full(count, -1, np.int64)
        similarities = np.zeros(count, np.float32)
        is_new = np.zeros(count, bool)
        columns = np.full(count, -1, np.int64)
        candidates = np.zeros(0, np.int64)
        similarity = np.zeros((count, 0), np.float32)
        if count and len(self):
            scores, ids = self.search(q, count + EXTRA_CANDIDATES)
            candidates, inverse = np.unique(ids, return_inverse=True)
            inverse = inverse.reshape(ids.shape)
            similarity = np.full((count, candidates.size), -np.inf, np.float32)
            np.put_along_axis(similarity, inverse, scores, axis=1)
            from edge_reid.matching.assignment import assign_unique  # SciPy: imported by the first match

            columns = assign_unique(similarity, self.threshold)
        for row, column in enumerate(columns.tolist()):
            if column >= 0:
                identity_id = int(candidates[column])
                best = float(similarity[row, column])
                identity_ids[row] = identity_id
                similarities[row] = best
                if update:
                    self._record_sighting(identity_id, when, None if at_least(best, self.novelty) else q[row], timestamp is not None)
            elif create:
                identity_ids[row] = self.add(q[row], timestamp=when)
                self._mark_seen(self._identities[int(identity_ids[row])], when, timestamp is not None)
                is_new[row] = True
        return MatchResult(identity_ids, similarities, is_new)

    # -- persistence --------------------------------------------------------------------------
    @_locked
    def metadata(self) -> dict:
        """JSON-able description without embeddings (what ``edge-reid gallery export`` writes)."""
        identities = []
        for identity in self._identities.values():  # built by hand: asdict() deep-copies every field, per identity, under the lock
            members = self._members[identity.identity_id]
            identities.append({
                "identity_id": identity.identity_id, "name": identity.name, "first_seen": identity.first_seen,
                "last_seen": identity.last_seen, "count": identity.count, "enrolled": len(members.enrolled),
                "recent": len(members.recent),
            })
        return {
            "kind": GALLERY_KIND,
            "model_id": self.model_id,
            "model_name": self.model_name,
            "dim": self.dim,
            "dtype": self.dtype.name,
            "threshold": self.threshold,
            "history_size": self.history_size,
            "novelty": self.novelty,
            "next_identity_id": self._next_id,
            "identities": identities,
        }

    @_locked
    def save(self, path: str | os.PathLike) -> None:
        """Write the gallery to ``path`` atomically (see :mod:`edge_reid.matching.gallery_file`).

        The ``last_seen`` of an identity seen in this process at the default time is first moved
        forward to the wall clock's time less the monotonic time since that sighting (when that is
        more than :data:`CLOCK_JUMP_S` later), so that a
        forward jump of the wall clock during the run (NTP setting a stale clock right) does not
        make the next run that loads the file see it as long unseen. It never moves backwards.

        Holds :attr:`lock` for the whole write (seconds for a gallery of tens of thousands of identities);
        :meth:`snapshot` then :meth:`write_snapshot` hold it only while the gallery is copied.

        Raises:
            OutputPathError: the directory is missing or not writable.
            OutputWriteError: the write failed (disk full, I/O error); the file saved before is kept.
        """
        self.write_snapshot(self.snapshot(), path)

    def snapshot(self) -> GallerySnapshot:
        """The gallery as :meth:`save` writes it, copied now (``last_seen`` moved forward as :meth:`save` says),
        for :meth:`write_snapshot` to write later, e.g. from another thread while others keep matching.

        Costs a copy of the stored embeddings (what :meth:`save` makes anyway) and one dict per identity. The
        copy's memory is allocated and touched before :attr:`lock` is taken, so that the lock is held for a
        memory copy (milliseconds per 100 MB), not for the kernel's mapping of fresh pages as well.
        """
        with self.lock:
            expected = len(self._store) + SNAPSHOT_SPARE_ROWS
        spare = np.empty((expected, self.dim), self.dtype)
        spare.fill(0)
        with self.lock:
            return self._snapshot(spare)

    def _snapshot(self, spare: np.ndarray) -> GallerySnapshot:
        """:meth:`snapshot` under the lock, copying into ``spare`` when it has room."""
        wall, clock = time.time(), time.monotonic()
        for identity_id, seen in self._seen_at.items():
            identity = self._identities[identity_id]
            if seen is not None and wall - (clock - seen) > identity.last_seen + CLOCK_JUMP_S:
                identity.last_seen = min(wall - (clock - seen), MAX_TIMESTAMP_S)
        self._snapshots += 1
        rows = [self._store.row_of(i) for members in self._members.values() for i in members.all()]
        if len(rows) <= spare.shape[0]:  # mode "clip": "raise" (the rows are valid) copies through a buffer
            payload = np.take(self._store.vectors, rows, axis=0, out=spare[: len(rows)], mode="clip") if rows else spare[:0]
        else:  # rows added since the spare was made
            payload = self._store.vectors[rows]
        return GallerySnapshot(dict(self.metadata(), saved_at=wall), payload, self._snapshots)

    def write_snapshot(self, snapshot: GallerySnapshot, path: str | os.PathLike) -> None:
        """Write a :meth:`snapshot` of this gallery to ``path`` atomically, as :meth:`save` does, without holding
        :attr:`lock`; any thread. Writes of this gallery's file are one at a time, and a snapshot taken before the
        one last written to ``path`` (by another thread meanwhile) is not written: the file holds a later copy.

        Raises:
            OutputPathError: the directory is missing or not writable.
            OutputWriteError: the write failed (disk full, I/O error); the file saved before is kept.
        """
        with self._write_lock:
            if snapshot.number < self._source_number and self.source_path is not None and _same_path(self.source_path, path):
                return
            write_gallery_file(path, snapshot.header, snapshot.payload)
            self._remember_source(path)
            self._source_number = snapshot.number

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        model_id: str | None = None,
        model_name: str | None = None,
        earlier_model_ids: tuple[str, ...] = (),
    ) -> "Gallery":
        """Read a gallery saved by :meth:`save` (parsed and checked by :func:`~edge_reid.matching.gallery_file.read_gallery`).

        Args:
            path: the ``.edgereid`` file.
            model_id: the current model's id; a gallery saved with another
                model is refused (None: no check); one saved without a model id is taken, with a
                :class:`~edge_reid.errors.GalleryWarning`, and records ``model_id`` at its next save.
            model_name: the current model's name, for the error message.
            earlier_model_ids: ids older edge-reid versions gave this same model
                (:func:`edge_reid.spec.legacy_model_ids`): such a gallery is accepted and re-tagged.

        Raises:
            DataError: missing, corrupt, truncated or inconsistent file, or a
                gallery made with another model.
        """
        stored = read_gallery(path, model_id=model_id, model_name=model_name, earlier_model_ids=earlier_model_ids)
        if model_id is not None and stored.model_id is None and stored.identities:
            warnings.warn(
                f"gallery {path} records no model (saved from a Gallery made without model_id): its embeddings are "
                f"taken as {model_name or 'this model'}'s, and its next save records that; if another model made them, "
                "matches against them mean nothing: enroll the people again into a new gallery",
                GalleryWarning, stacklevel=caller_stacklevel(),
            )
        gallery = cls(
            stored.dim, threshold=stored.threshold, history_size=stored.history_size, novelty=stored.novelty,
            dtype=stored.dtype, model_id=stored.model_id or model_id, model_name=stored.model_name or model_name,
        )
        gallery._store.reserve(sum(len(entry.enrolled) + len(entry.recent) for entry in stored.identities))
        for entry in stored.identities:
            enrolled = gallery._store.add(entry.enrolled, labels=entry.identity_id, normalize=False) if len(entry.enrolled) else []
            recent = gallery._store.add(entry.recent, labels=entry.identity_id, normalize=False) if len(entry.recent) else []
            gallery._identities[entry.identity_id] = Identity(
                entry.identity_id, entry.name, entry.first_seen, entry.last_seen, entry.count
            )
            gallery._members[entry.identity_id] = _Members(list(map(int, enrolled)), deque(map(int, recent)))
        gallery._next_id = stored.next_identity_id
        gallery._remember_source(path)
        return gallery

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        dim: int,
        model_id: str | None = None,
        model_name: str | None = None,
        create: bool = True,
        earlier_model_ids: tuple[str, ...] = (),
    ) -> "Gallery":
        """Load the gallery at ``path``, or start an empty one when the file does not exist and ``create``.

        Args:
            path: the ``.edgereid`` file.
            dim: embedding length D of the current model (for a new gallery).
            model_id: the current model's id (``Embedder.model_id``): a gallery of another model is refused.
            model_name: the current model's name, for messages.
            create: start an empty gallery when the file is missing.
            earlier_model_ids: ids older edge-reid versions gave this same model (see :meth:`load`).

        Raises:
            DataError: missing (and not ``create``), corrupt, made with another model, or of
                another embedding size than ``dim``.
        """
        if Path(path).exists():
            gallery = cls.load(path, model_id=model_id, model_name=model_name, earlier_model_ids=earlier_model_ids)
            if gallery.dim != dim:
                raise DataError(f"gallery {path} holds {gallery.dim}-d embeddings, the model makes {dim}-d ones: use a gallery of this model")
            return gallery
        if not create:
            raise DataError(f"gallery file {path} does not exist")
        return cls(dim, model_id=model_id, model_name=model_name)
