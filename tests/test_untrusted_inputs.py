"""Other local users and crafted inputs, beyond the damaged files of tests/test_hostile_files.py: a cache
folder another user can write (Numba's cache files are pickles, which run code when loaded), links planted
in shared folders, crafted model files and downloads. Each is refused with one line, or passed over."""

from __future__ import annotations

import os
import pickle
import threading
import warnings
from pathlib import Path

import pytest
from test_restricted_filesystems import read_only_install  # noqa: F401 - a fixture: Numba's own places cannot be written

from edge_reid import cache_folder
from edge_reid.cache_folder import cache_file, writable_cache_folder, write_cache_entry
from edge_reid.errors import EdgeReidWarning
from edge_reid.jit import cached_njit

NOBODY = 65534

as_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                             reason="giving a folder to another user (chown) needs root")


class _Plant:
    """Pickled, runs ``Path(marker).touch()`` when unpickled: what another user could put in a Numba cache file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _hand_over(folder: Path, how: str) -> None:
    """Make ``folder`` (and all in it) writable by someone else: owned by nobody, or mode 777."""
    for path in [folder, *folder.rglob("*")]:
        if how == "owned by another user":
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
        elif not path.is_symlink():
            path.chmod(0o777)


@pytest.mark.parametrize("variable", ["EDGE_REID_CACHE_DIR", "XDG_CACHE_HOME"])
@pytest.mark.parametrize("how", [pytest.param("owned by another user", marks=as_root), "writable by every user"])
def test_a_pickle_planted_in_a_cache_folder_others_can_write_is_never_loaded(read_only_install, tmp_path, monkeypatch, how, variable):  # noqa: F811
    """EDGE_REID_CACHE_DIR=/tmp/x made by another user, or a shared XDG_CACHE_HOME (where Numba keeps code in
    numba/ itself): Numba unpickled the index file planted there, running the planter's code in the process of
    whoever ran edge-reid next."""
    import numba

    cache = tmp_path / "cache"
    monkeypatch.delenv("EDGE_REID_CACHE_DIR", raising=False)
    monkeypatch.setenv(variable, str(cache))
    assert cached_njit()(read_only_install)(41) == 42
    [index] = (cache / "numba").rglob("*.nbi")
    marker = tmp_path / "planted-code-ran"
    index.write_bytes(pickle.dumps(numba.__version__) + pickle.dumps(_Plant(marker)))
    _hand_over(cache, how)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = cached_njit()(read_only_install)
        assert again(1) == 2
    assert not marker.exists(), "the planted pickle was loaded"
    messages = [str(w.message) for w in caught if issubclass(w.category, EdgeReidWarning)]
    assert len(messages) == 1 and str(cache) in messages[0] and "another user could put files there" in messages[0]
    assert "EDGE_REID_CACHE_DIR" in messages[0]


@pytest.mark.parametrize("how", [pytest.param("owned by another user", marks=as_root), "writable by every user"])
def test_json_caches_and_openvino_are_not_kept_in_a_folder_others_can_write(tmp_path, monkeypatch, how):
    """A link planted as a JSON cache file in a shared cache folder: the next cache write replaced the file it
    points to (one of the user's own) with edge-reid's JSON."""
    cache = tmp_path / "cache"
    cache.mkdir()
    victim = tmp_path / "victims-own-file.txt"
    victim.write_text("precious\n")
    (cache / "onnxruntime-tuning.json").symlink_to(victim)
    (cache / "openvino").mkdir()
    _hand_over(cache, how)
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(cache))
    monkeypatch.setattr(cache_folder, "_warned_uncached", threading.Event())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_cache_entry(cache_file("onnxruntime-tuning.json"), "schema", "key", {"ms": 1.0}, "ONNX Runtime tuning cache")
    assert victim.read_text() == "precious\n"
    assert [str(w.message) for w in caught if "caches are off" in str(w.message) and "another user could" in str(w.message)]
    assert cache_file("onnxruntime-tuning.json") is None and writable_cache_folder("openvino") is None
    assert cache_folder.folder_trust_problem(cache).startswith(str(cache))


def test_a_folder_only_this_user_can_write_is_used_below_a_sticky_shared_one(tmp_path, monkeypatch):
    """``/tmp/x`` made by this user is a cache folder like any other (``/tmp`` is sticky: no one else may rename
    or remove it); a group-writable one is, where the group is this user's own (``umask 002``)."""
    import grp
    import pwd

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    cache = shared / "mine"
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(cache))
    assert cache_folder.folder_trust_problem(cache) is None and writable_cache_folder("openvino") == cache / "openvino"
    me = pwd.getpwuid(os.geteuid())
    cache.chmod(0o775)
    own = os.stat(cache).st_gid == me.pw_gid and set(grp.getgrgid(me.pw_gid).gr_mem) <= {me.pw_name}
    assert (cache_folder.folder_trust_problem(cache) is None) == own
    cache.chmod(0o1777)
    assert "can be written by every user (mode 1777)" in cache_folder.folder_trust_problem(cache)
    cache.chmod(0o700)
    link = shared / "link-to-mine"
    link.symlink_to(cache)
    assert cache_folder.folder_trust_problem(link) is None  # a link of this user's own
    if os.geteuid() == 0:  # another user's link to it: they could point it elsewhere later
        os.lchown(link, NOBODY, NOBODY)
        assert cache_folder.folder_trust_problem(link).startswith(f"{link} is a symbolic link owned by user {NOBODY}")



def test_a_cache_folder_someone_else_makes_first_is_not_used(tmp_path, monkeypatch):
    """``EDGE_REID_CACHE_DIR=/tmp/cache`` not made yet is judged by ``/tmp`` (sticky: fine), one not made yet in a folder
    others may write by that folder; another user making it between that look and edge-reid's own ``mkdir`` is caught
    by the checks after making it (folders of Numba and OpenVINO) and before each JSON write."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    cache = shared / "cache"
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(cache))
    monkeypatch.setattr(cache_folder, "_warned_uncached", threading.Event())
    assert cache_folder.folder_trust_problem(cache) is None
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    assert cache_folder.folder_trust_problem(tmp_path / "open" / "not-made-yet").startswith(f"{tmp_path / 'open'} can be written by every user")
    tuning = cache_file("tuning.json")
    cache.mkdir()
    cache.chmod(0o777)  # made by someone else in between
    monkeypatch.setattr(cache_folder, "_trusted_cache_dir", lambda: cache)  # as looked up before it was there
    assert writable_cache_folder("openvino") is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_cache_entry(tuning, "schema", "key", {"ms": 1.0}, "ONNX Runtime tuning cache")
    assert not tuning.exists() and [w for w in caught if f"{cache} can be written by every user" in str(w.message)]


def test_a_cache_file_over_the_size_limit_is_rebuilt(tmp_path, monkeypatch):
    """A JSON cache edge-reid never writes that large (a planted or runaway file) is not parsed into memory."""
    from edge_reid.cache_folder import read_cache_entries

    path = tmp_path / "tuning.json"
    path.write_text('{"schema": "s", "entries": {"k": {"ms": 1.0}}}')
    assert read_cache_entries(path, "s") == {"k": {"ms": 1.0}}
    monkeypatch.setattr(cache_folder, "_MAX_CACHE_FILE_BYTES", path.stat().st_size - 1)
    assert read_cache_entries(path, "s") == {}


def test_a_group_writable_folder_is_used_only_where_the_group_is_this_users_alone(tmp_path, monkeypatch):
    """``umask 002`` leaves folders group-writable: fine where the group is the user's private one (no other member),
    refused where the user's primary group is a team's (another member could plant a pickle)."""
    import grp
    import pwd
    from types import SimpleNamespace

    me = pwd.getpwuid(os.geteuid())
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chown(cache, -1, me.pw_gid)
    cache.chmod(0o775)
    monkeypatch.setattr(grp, "getgrgid", lambda gid: SimpleNamespace(gr_name="mine", gr_mem=[]))
    assert cache_folder.folder_trust_problem(cache) is None
    monkeypatch.setattr(grp, "getgrgid", lambda gid: SimpleNamespace(gr_name="team", gr_mem=[me.pw_name, "colleague"]))
    assert cache_folder.folder_trust_problem(cache) == f"{cache} can be written by the group {me.pw_gid} (team) (mode 775)"


def test_folders_above_the_home_do_not_turn_the_caches_off(tmp_path, monkeypatch):
    """A home of this user's own in a folder others may write or own (``/home`` owned by an admin account or made
    group-writable, a lab's folder of homes): every cache was off, although whoever can write there can replace the
    home and its ``~/.bashrc`` already; ssh's StrictModes, too, looks no higher than the home. A cache folder given
    outside the home in such a folder is still refused."""
    homes = tmp_path / "homes"
    home = homes / "me"
    home.mkdir(parents=True)
    homes.chmod(0o777)  # as another user's or group's folder would be for them
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("EDGE_REID_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    cache = home / ".cache" / "edge-reid"
    assert cache_folder.folder_trust_problem(cache) is None
    assert writable_cache_folder("openvino") == cache / "openvino" and cache_file("x.json") == cache / "x.json"
    home.chmod(0o777)  # the home itself is still checked
    assert "can be written by every user" in cache_folder.folder_trust_problem(cache)
    home.chmod(0o755)
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(homes / "cache"))  # beside the home, not in it
    assert cache_folder.folder_trust_problem(homes / "cache").startswith(f"{homes} can be written by every user")
    assert cache_file("x.json") is None

@as_root
@pytest.mark.parametrize("writer", ["gallery save (atomic)", "events file (lines)"])
def test_a_link_another_user_planted_in_a_shared_folder_is_not_followed(tmp_path, writer):
    """Another user's ``/tmp/out/gallery.edgereid -> ~/.bashrc``: the save resolved the link itself
    (``os.path.realpath``) and replaced the user's own file, where the kernel's ``fs.protected_symlinks`` would
    have refused to follow it; a link of the user's own there is still followed."""
    from edge_reid.atomic import atomic_write_bytes
    from edge_reid.errors import OutputPathError
    from edge_reid.line_output import LineOutput

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victims-own-file.txt"
    victim.write_text("precious\n")
    planted = shared / "gallery.edgereid"
    planted.symlink_to(victim)
    os.lchown(planted, NOBODY, NOBODY)

    def write(path):
        if writer.startswith("gallery"):
            atomic_write_bytes(path, b"gallery bytes", what="gallery")
        else:
            output = LineOutput(path, "events")
            output.write('{"event": "new"}\n')
            output.close()

    with pytest.raises(OutputPathError, match=rf"{planted}: it is a symbolic link to {victim}, .*another user's \(uid {NOBODY}\)"):
        write(planted)
    assert victim.read_text() == "precious\n" and planted.is_symlink()
    planted.unlink()
    planted.symlink_to(victim)  # the user's own link: followed, as before
    write(planted)
    assert victim.read_text() != "precious\n" and planted.is_symlink()


def test_a_relative_link_of_this_users_own_is_followed_from_its_own_folder(tmp_path, monkeypatch):
    """``out/current -> v2/latest``, ``v2/latest -> g.edgereid``: each relative target is found from the folder of its
    link, not from the working folder, and the file the chain ends at is replaced, the links kept."""
    from edge_reid.atomic import atomic_write_bytes

    out = tmp_path / "out"
    (out / "v2").mkdir(parents=True)
    out.chmod(0o1777)  # a shared folder: the links are this user's own, so followed
    (out / "v2" / "g.edgereid").write_bytes(b"old")
    (out / "v2" / "latest").symlink_to("g.edgereid")
    (out / "current").symlink_to("v2/latest")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    atomic_write_bytes(out / "current", b"new", what="gallery")
    assert (out / "v2" / "g.edgereid").read_bytes() == b"new"
    assert (out / "current").is_symlink() and (out / "v2" / "latest").is_symlink() and list(elsewhere.iterdir()) == []
    (out / "next").symlink_to("v3.edgereid")  # made before the file it names: the first save makes that file
    atomic_write_bytes(out / "next", b"first", what="gallery")
    assert (out / "v3.edgereid").read_bytes() == b"first" and (out / "next").is_symlink()


@as_root
def test_a_planted_link_further_down_a_chain_is_refused_and_the_folders_owners_is_followed(tmp_path):
    """The user's own ``~/g.edgereid -> /tmp/g`` where another user then put ``/tmp/g -> ~/.bashrc``: refused at the
    second link. A link of the sticky folder's owner's own is followed, as the kernel's fs.protected_symlinks does."""
    from edge_reid.atomic import atomic_write_bytes
    from edge_reid.errors import OutputPathError

    victim = tmp_path / "victims-own-file.txt"
    victim.write_text("precious\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    planted = shared / "g"
    planted.symlink_to(victim)
    os.lchown(planted, NOBODY, NOBODY)
    mine = tmp_path / "g.edgereid"
    mine.symlink_to(planted)
    with pytest.raises(OutputPathError, match=rf"cannot write gallery {planted}: it is a symbolic link to {victim}"):
        atomic_write_bytes(mine, b"gallery bytes", what="gallery")
    assert victim.read_text() == "precious\n"
    theirs = tmp_path / "theirs"  # a sticky folder another user owns, and that user's link in it
    theirs.mkdir()
    theirs.chmod(0o1777)
    os.chown(theirs, NOBODY, NOBODY)
    (theirs / "g.edgereid").symlink_to(victim)
    os.lchown(theirs / "g.edgereid", NOBODY, NOBODY)
    atomic_write_bytes(theirs / "g.edgereid", b"gallery bytes", what="gallery")
    assert victim.read_bytes() == b"gallery bytes"


class _Redirecting(__import__("http.server").server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", {"/to-ftp": "ftp://127.0.0.1:1/m.onnx", "/to-file": "file:///etc/hostname"}[self.path])
        self.end_headers()


@pytest.fixture()
def redirecting_server():
    import http.server

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_downloads_take_http_and_file_urls_only_and_redirects_stay_on_http(redirecting_server, tmp_path):
    """download_model says "http(s) or file URL", but urllib fetched ftp:// (nothing encrypted nor checked), data:
    URLs and followed a server's redirect to ftp://; the error of an unknown scheme was urllib's own."""
    import urllib.request

    from edge_reid.assets import download_model
    from edge_reid.errors import ModelError

    out = tmp_path / "m.onnx"
    for url in ("data:,model-bytes", "ftp://127.0.0.1:1/m.onnx", "gopher://example.org/m.onnx"):
        with pytest.raises(ModelError, match=rf"cannot download {url} to {out}: \w+: URLs are not downloaded; give an http\(s\):// or file:// URL"):
            download_model(url, out)
    with pytest.raises(ModelError, match=r"/to-ftp: the server redirects it to ftp://127.0.0.1:1/m.onnx, not an http\(s\):// URL"):
        download_model(f"{redirecting_server}/to-ftp", out, timeout_s=5)
    assert list(tmp_path.iterdir()) == []
    from edge_reid.assets import _Redirects

    https = urllib.request.Request("https://models.example/m.onnx")
    with pytest.raises(ModelError, match="redirects it to http://mirror.example/m.onnx, plain http .* give the file's sha256"):
        _Redirects(checked=False).redirect_request(https, None, 302, "Found", {}, "http://mirror.example/m.onnx")
    assert _Redirects(checked=True).redirect_request(https, None, 302, "Found", {}, "http://mirror.example/m.onnx").full_url == "http://mirror.example/m.onnx"


@pytest.mark.parametrize("location", ["../outside/weights.bin", "{outside}/weights.bin", "link-out.bin"])
def test_weights_named_outside_the_models_folder_are_refused_before_they_are_read(tmp_path, location):
    """A downloaded "model pack" whose ONNX external data names ``../../x``, an absolute path or a link out of its
    folder: load_spec read and hashed that file (any size; the runtimes refuse such a model only later, in a
    long message)."""
    import onnx
    from test_user_models import _external_weights_model

    from edge_reid.errors import ModelError
    from edge_reid.spec import load_spec

    folder = tmp_path / "pack"
    folder.mkdir()
    model = _external_weights_model(folder)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.replace(folder / "ext.onnx.data", outside / "weights.bin")
    (folder / "link-out.bin").symlink_to(outside / "weights.bin")
    location = location.format(outside=outside)
    graph = onnx.load(str(model), load_external_data=False)
    for entry in graph.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save(graph, str(model))
    with pytest.raises(ModelError, match=rf"ext.onnx: its weights file \(ONNX external data\) '{location}' leads outside "
                                         rf"the model's folder, to {outside}/weights.bin; .* beside the model"):
        load_spec(model)


@pytest.mark.parametrize("field, value", [("name", "Eve\nedge-reid: error: \x1b[31mforged line\x1b[0m"),
                                          ("name", "Eve\tenrolled"), ("model_name", "osnet\nforged line")])
def test_a_gallery_whose_names_hold_line_breaks_or_terminal_escapes_is_refused(tmp_path, field, value):
    """A crafted gallery (valid checksum) with a name no way of edge-reid lets in: `gallery list` printed its line
    breaks, tabs and escape codes as they were, forging lines and columns of its output and the terminal's."""
    from test_hostile_files import _GALLERY, _ROW, _crafted_gallery

    from edge_reid.errors import DataError
    from edge_reid.matching.gallery_file import read_gallery

    header = dict(_GALLERY, model_name=value) if field == "model_name" else \
        dict(_GALLERY, identities=[dict(_GALLERY["identities"][0], name=value)])
    path = _crafted_gallery(tmp_path / "g.edgereid", header, _ROW)
    with pytest.raises(DataError, match=rf"gallery file {path} is inconsistent: .*{field} .* holds a control character") as caught:
        read_gallery(path)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)


@pytest.mark.parametrize("content", ["[" * 100_000 + "]" * 100_000, "pipe",
                                     '{"schema": 1, "entries": {"k": {"level": NaN, "ms": Infinity}}}'],
                         ids=["nested", "pipe", "nan"])
def test_a_cache_file_nested_too_deeply_a_pipe_or_nan_is_rebuilt_not_raised(tmp_path, content):
    """A damaged ONNX Runtime tuning cache: one nested too deeply for json raised RecursionError from every start
    (a traceback), a pipe in its place waited for ever; NaN and Infinity, which json reads, are measured again."""
    import subprocess
    import sys

    cache = tmp_path / "cache"
    cache.mkdir()
    tuning = cache / "onnxruntime-tuning.json"
    if content == "pipe":
        os.mkfifo(tuning)
    else:
        tuning.write_text(content)
    code = (f"from pathlib import Path\nfrom edge_reid.backends.onnxruntime import OnnxRuntimeBackend\n"
            f"from edge_reid.spec import ModelSpec\nfrom onnx_builders import mean_model\n"
            f"spec = ModelSpec(name='means', input_name='images', height=256, width=128, embedding_dim=3)\n"
            f"backend = OnnxRuntimeBackend(mean_model(Path({str(tmp_path)!r}) / 'means.onnx'), spec, threads=1)\n"
            f"print(backend.tuning.source, backend.infer(2).shape)\n")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, EDGE_REID_CACHE_DIR=str(cache), PYTHONPATH=os.pathsep.join(
                              [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])))
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.split("\n")[0] == "measured (2, 3)"


def test_a_link_planted_as_a_gallerys_lock_file_is_not_followed(tmp_path):
    """Another user's ``/tmp/out/people.edgereid.lock -> ~/.bashrc`` (the lock file edge-reid makes beside a gallery,
    never a link): taking the lock truncated the user's file and wrote the holder's line into it."""
    from edge_reid.errors import OutputPathError
    from edge_reid.matching.gallery_lock import gallery_lock

    victim = tmp_path / "victims-own-file.txt"
    victim.write_text("precious\n")
    gallery = tmp_path / "people.edgereid"
    (tmp_path / "people.edgereid.lock").symlink_to(victim)
    with pytest.raises(OutputPathError, match=rf"cannot lock gallery {gallery}: its lock file .*lock is a symbolic link"), \
            gallery_lock(gallery, "edge-reid gallery enroll"):
        pass
    assert victim.read_text() == "precious\n"
