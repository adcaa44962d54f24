#!/usr/bin/env bash
# install_jetson.sh: set up edge-reid with TensorRT on an NVIDIA Jetson (JetPack 6, or JetPack 7 on Jetson Thor).
#
#   ./install_jetson.sh [--venv DIR] [--pip-opencv] [--mot] [--engines-dir DIR] [--skip-apt] [--dry-run]
#
# 1. Detects L4T/JetPack from /etc/nv_tegra_release (or the nvidia-l4t-core package);
#    stops with a message on anything that is not a Jetson. Finds this device's CUDA version and
#    checks it against the cuda-python bound of this JetPack's extra (step 4) before installing anything.
# 2. Installs TensorRT's Python bindings from JetPack's apt repository (python3-libnvinfer),
#    JetPack's OpenCV if the system Python has none (nvidia-opencv), python3-venv and python3-pip;
#    checks that TensorRT and its ONNX parser (trt.OnnxParser) import. Where JetPack's apt
#    repository has no nvidia-opencv, Ubuntu's python3-opencv (also built with GStreamer).
# 3. Makes a virtual environment with --system-site-packages, so the apt-installed TensorRT
#    and JetPack's OpenCV are visible inside it.
# 4. Installs edge-reid with the extra of this JetPack ([jetson] on JetPack 6, CUDA 12;
#    [jetpack7] on JetPack 7, CUDA 13), pinning cuda-python to this device's CUDA
#    (cuda-python==X.Y.*, which must lie within that extra's bound in pyproject.toml: the one
#    place the supported cuda-python versions are written) and NumPy below 2 (JetPack's
#    apt-built Python modules, e.g. its OpenCV, are built against NumPy 1.x).
# 5. Checks that this user is in the video and render groups (CUDA needs them), warns about
#    engines built by another TensorRT version, and runs `edge-reid doctor`.
#
# Safe to run again: installed apt packages are skipped, the venv is reused, pip only
# changes what is missing. Nothing is uninstalled.
#
# OpenCV and CSI cameras: edge-reid does not declare pip's OpenCV on a Jetson (L4T kernels),
# so `import cv2` finds JetPack's OpenCV, built with GStreamer: CSI cameras (nvarguscamerasrc
# pipelines) and USB cameras work. --pip-opencv installs pip's opencv-python-headless instead
# (the [opencv] extra: no GStreamer, so USB cameras and files only).
#
# Options:
#   --venv DIR         virtual environment to create or reuse (default: .venv in this repository)
#   --pip-opencv       use pip's OpenCV (no GStreamer) instead of JetPack's
#   --mot              also install TrackEval for `edge-reid eval-mot`, without the pip OpenCV it
#                      declares (pip install 'edge-reid[mot]' would put opencv-python over JetPack's)
#   --engines-dir DIR  where your TensorRT engines are, to warn about stale ones; passed on to doctor (default: engines)
#   --skip-apt         do not run apt-get (packages already installed, or no sudo)
#   --dry-run          detect and print the commands (quoted for the shell), change nothing
#
# Exit status: 0 done, 1 a step failed (the message says which and what to do), 2 a usage error.
#
# For testing the detection on other machines: EDGE_REID_TEGRA_RELEASE (path of the release
# file, default /etc/nv_tegra_release), EDGE_REID_ARCH (default: uname -m), EDGE_REID_CUDA_VERSION
# (default: detected), EDGE_REID_TRT_VERSION (default: detected) and EDGE_REID_USER_GROUPS
# (default: id -nG).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$REPO/.venv"
PIP_OPENCV=0
MOT=0
ENGINES_DIR="engines"
SKIP_APT=0
DRY_RUN=0
PYTHON="${PYTHON:-/usr/bin/python3}"
TEGRA_RELEASE="${EDGE_REID_TEGRA_RELEASE:-/etc/nv_tegra_release}"
ARCH="${EDGE_REID_ARCH:-$(uname -m)}"

say() { printf 'install_jetson: %s\n' "$*"; }
die() { printf 'install_jetson: error: %s\n' "$*" >&2; exit 1; }
usage_error() { printf 'install_jetson: error: %s\n' "$*" >&2; exit 2; }
warn() { printf 'install_jetson: warning: %s\n' "$*" >&2; }
run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+'
        printf ' %q' "$@"  # quoted as the shell reads it back: a dry run's commands can be pasted
        echo
    else
        "$@"
    fi
}
# The value of option $1 (the next argument, $2): refused when missing or when it is another option.
option_value() {
    [ $# -ge 2 ] && [ "${2#--}" = "$2" ] || usage_error "$1 needs a folder (see --help)"
}
PIP_FAILED="check the network, or a proxy (HTTPS_PROXY) or package index mirror (PIP_INDEX_URL), then run this again"

while [ $# -gt 0 ]; do
    case "$1" in
        --venv) option_value "$@"; VENV="$2"; shift 2 ;;
        --pip-opencv) PIP_OPENCV=1; shift ;;
        --mot) MOT=1; shift ;;
        --system-opencv) say "--system-opencv: JetPack's OpenCV is now the default"; shift ;;
        --engines-dir) option_value "$@"; ENGINES_DIR="$2"; shift 2 ;;
        --skip-apt) SKIP_APT=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) usage_error "unknown option $1 (see --help)" ;;
    esac
done

Q_VENV="$(printf '%q' "$VENV")"  # for commands shown to be pasted

# --- 1. Is this a Jetson, and which L4T/JetPack? -------------------------------------------
L4T=""
if [ -r "$TEGRA_RELEASE" ]; then
    # First line looks like: "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, ..."
    line="$(head -n 1 "$TEGRA_RELEASE")"
    major="$(printf '%s\n' "$line" | sed -n 's/^# *R\([0-9][0-9]*\) *(release), *REVISION: *\([0-9][0-9.]*\).*/\1/p')"
    revision="$(printf '%s\n' "$line" | sed -n 's/^# *R\([0-9][0-9]*\) *(release), *REVISION: *\([0-9][0-9.]*\).*/\2/p')"
    [ -n "$major" ] || die "$TEGRA_RELEASE does not look like an L4T release file: $line"
    L4T="$major.$revision"
elif command -v dpkg-query >/dev/null 2>&1 && dpkg-query -W -f='${Version}' nvidia-l4t-core >/dev/null 2>&1; then
    version="$(dpkg-query -W -f='${Version}' nvidia-l4t-core)"  # e.g. 36.4.0-20240912212859
    L4T="${version%%-*}"
fi
if [ -z "$L4T" ]; then
    die "this machine is not an NVIDIA Jetson (no $TEGRA_RELEASE and no nvidia-l4t-core package).
  On any other machine install edge-reid with:  python3 -m pip install .   (on the CPU: OpenVINO on x86-64, ONNX Runtime everywhere; --backend auto picks)
  For TensorRT on a desktop/server NVIDIA GPU, install NVIDIA's tensorrt and cuda-python wheels, then run: edge-reid doctor"
fi
[ "$ARCH" = "aarch64" ] || die "found L4T $L4T but the CPU is $ARCH, not aarch64; run this on the Jetson itself"
L4T_MAJOR="${L4T%%.*}"
case "$L4T_MAJOR" in
    36) JETPACK="JetPack 6"; EXTRA="jetson" ;;
    # JetPack 7 (Jetson Thor; Ubuntu 24.04, Python 3.12, CUDA 13): from NVIDIA's release notes, not yet run on one.
    38) JETPACK="JetPack 7"; EXTRA="jetpack7" ;;
    35|34) die "L4T $L4T is JetPack 5: it ships Python 3.8 and CUDA 11.4, and edge-reid needs Python >= 3.10.
  Upgrade the Jetson to JetPack 6, or use the CPU backend (--backend onnxruntime) from a Python >= 3.10 install." ;;
    *) die "L4T $L4T is not supported (edge-reid targets JetPack 6, L4T 36.x, and JetPack 7, L4T 38.x)" ;;
esac
say "found L4T $L4T ($JETPACK) on $ARCH"

# --- Python ------------------------------------------------------------------------------------
[ -x "$PYTHON" ] || die "no system Python at $PYTHON (set PYTHON=/path/to/python3)"
PY_VERSION="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || die "system Python is $PY_VERSION; edge-reid needs >= 3.10 (JetPack 6 has 3.10, JetPack 7 3.12)"
say "system Python $PY_VERSION ($PYTHON)"

# --- CUDA version, for a matching cuda-python ----------------------------------------------------
CUDA_MM=""
if [ -n "${EDGE_REID_CUDA_VERSION:-}" ]; then
    :  # set below
elif [ -r /usr/local/cuda/version.json ]; then
    CUDA_MM="$("$PYTHON" -c 'import json; v = json.load(open("/usr/local/cuda/version.json"))["cuda"]["version"]; print(".".join(v.split(".")[:2]))' 2>/dev/null || true)"
fi
if [ -z "$CUDA_MM" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
    CUDA_MM="$(/usr/local/cuda/bin/nvcc --version | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)"
fi
if [ -z "$CUDA_MM" ] && command -v dpkg-query >/dev/null 2>&1; then
    CUDA_MM="$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'cuda-cudart-[0-9]*' 2>/dev/null \
        | sed -n 's/^ii *cuda-cudart-\([0-9][0-9]*\)-\([0-9][0-9]*\)$/\1.\2/p' | sort -V | tail -n 1 || true)"
fi
[ -z "${EDGE_REID_CUDA_VERSION:-}" ] || CUDA_MM="$EDGE_REID_CUDA_VERSION"
if [ -z "$CUDA_MM" ]; then
    # NVIDIA's JetPack release table: L4T 36.4 -> CUDA 12.6; L4T 36.2/36.3 -> CUDA 12.2; L4T 38 -> CUDA 13.0.
    case "$L4T" in
        36.4*|36.5*) CUDA_MM="12.6" ;;
        36.*) CUDA_MM="12.2" ;;
        38.*) CUDA_MM="13.0" ;;
    esac
    say "CUDA toolkit not found; assuming CUDA $CUDA_MM from L4T $L4T"
fi
# The supported cuda-python versions are written once, in pyproject.toml's extra of this JetPack.
CUDA_PYTHON_BOUND="$(sed -n "s/^$EXTRA *= *\\[ *\"cuda-python\\([^\"]*\\)\".*/\\1/p" "$REPO/pyproject.toml" | head -n 1)"
[ -n "$CUDA_PYTHON_BOUND" ] || die "cannot read the cuda-python requirement of the [$EXTRA] extra from $REPO/pyproject.toml"
# Prints yes, no, or unknown (no packaging module for $PYTHON yet: python3-pip comes with apt below).
cuda_in_bound() {
    "$PYTHON" - "$CUDA_MM" "$CUDA_PYTHON_BOUND" <<'PY' 2>/dev/null || echo unknown
import sys
try:
    from packaging.specifiers import SpecifierSet
except ImportError:
    from pip._vendor.packaging.specifiers import SpecifierSet
print("yes" if f"{sys.argv[1]}.0" in SpecifierSet(sys.argv[2]) else "no")
PY
}
check_cuda_bound() {
    [ "$in_bound" != "no" ] || die "this Jetson has CUDA $CUDA_MM, but edge-reid supports cuda-python$CUDA_PYTHON_BOUND (pyproject.toml [$EXTRA] extra, $JETPACK)"
}
# Checked before apt changes anything; again after it only when it could not be decided before.
in_bound="$(cuda_in_bound)"
check_cuda_bound
say "CUDA $CUDA_MM: cuda-python==$CUDA_MM.* (edge-reid's [$EXTRA] extra allows cuda-python$CUDA_PYTHON_BOUND)"

# --- 2. apt: TensorRT's Python bindings, JetPack's OpenCV, venv, pip --------------------------
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
wanted=(python3-libnvinfer python3-venv python3-pip)
# The system's OpenCV, built with GStreamer: JetPack's nvidia-opencv, or Ubuntu's python3-opencv where
# JetPack's apt repository has none (decided below, once the package lists are fresh).
OPENCV_PACKAGE="nvidia-opencv"
if [ "$PIP_OPENCV" -eq 0 ] && ! "$PYTHON" -c 'import cv2' >/dev/null 2>&1; then
    wanted+=("$OPENCV_PACKAGE")
fi
missing=()
for package in "${wanted[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
    say "apt packages already installed: ${wanted[*]}"
elif [ "$SKIP_APT" -eq 1 ]; then
    say "--skip-apt: not installing ${missing[*]}"
else
    run $SUDO apt-get update
    for i in "${!missing[@]}"; do
        if [ "${missing[$i]}" = "$OPENCV_PACKAGE" ] && ! apt-cache show "$OPENCV_PACKAGE" >/dev/null 2>&1; then
            apt-cache show python3-opencv >/dev/null 2>&1 \
                || die "neither JetPack's nvidia-opencv nor Ubuntu's python3-opencv is in this Jetson's apt repositories: run this again with --pip-opencv (pip's OpenCV: USB cameras and files, no CSI)"
            say "JetPack's apt repository has no $OPENCV_PACKAGE: using Ubuntu's python3-opencv (also built with GStreamer)"
            OPENCV_PACKAGE="python3-opencv"
            missing[i]="$OPENCV_PACKAGE"
        fi
    done
    say "installing ${missing[*]} from JetPack's and Ubuntu's apt repositories"
    run $SUDO apt-get install -y "${missing[@]}"
fi
if [ "$in_bound" = "unknown" ]; then
    in_bound="$(cuda_in_bound)"
    check_cuda_bound
fi
TRT_VERSION="${EDGE_REID_TRT_VERSION:-}"
if [ -z "$TRT_VERSION" ]; then
    TRT_VERSION="$("$PYTHON" -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null || true)"
fi
if [ -n "$TRT_VERSION" ]; then
    say "TensorRT $TRT_VERSION"
    if [ -z "${EDGE_REID_TRT_VERSION:-}" ]; then
        # JetPack ships the ONNX parser as its own package (libnvonnxparsers<major>); engines cannot be built without it.
        "$PYTHON" -c 'import tensorrt; tensorrt.OnnxParser' >/dev/null 2>&1 \
            || die "TensorRT $TRT_VERSION imports but its ONNX parser (trt.OnnxParser) does not: sudo apt install libnvonnxparsers${TRT_VERSION%%.*} (or the whole nvidia-tensorrt), then run this again"
    fi
elif [ "$DRY_RUN" -eq 1 ]; then
    say "TensorRT does not import with $PYTHON (dry run: continuing)"
else
    die "TensorRT's Python bindings do not import with $PYTHON; check 'dpkg -l | grep nvinfer' (JetPack: sudo apt install nvidia-jetpack)"
fi

# --- 3. virtual environment with the system's site packages ---------------------------------
if [ -x "$VENV/bin/python" ]; then
    [ -f "$VENV/pyvenv.cfg" ] || die "$VENV has no pyvenv.cfg, so it is not a virtual environment; remove it or pass --venv NEW_DIR"
    grep -q '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" \
        || die "$VENV exists without --system-site-packages, so TensorRT is invisible in it; remove it or pass --venv NEW_DIR"
    say "reusing $VENV"
else
    say "creating $VENV (--system-site-packages: TensorRT and JetPack's OpenCV stay visible)"
    run "$PYTHON" -m venv --system-site-packages "$VENV"
fi

# --- 4. edge-reid ---------------------------------------------------------------------------
CONSTRAINTS="$(mktemp "${TMPDIR:-/tmp}/edge-reid-constraints.XXXXXX")"
trap 'rm -f "$CONSTRAINTS"' EXIT
printf 'cuda-python==%s.*\nnumpy<2\n' "$CUDA_MM" > "$CONSTRAINTS"
EXTRAS="$EXTRA"
[ "$PIP_OPENCV" -eq 0 ] || EXTRAS="$EXTRA,opencv"
run "$VENV/bin/python" -m pip install --upgrade pip || die "pip could not upgrade itself in $VENV: $PIP_FAILED"
run "$VENV/bin/python" -m pip install -c "$CONSTRAINTS" "${REPO}[$EXTRAS]" \
    || die "pip could not install edge-reid[$EXTRAS] with cuda-python==$CUDA_MM.* into $VENV: $PIP_FAILED"

if [ "$MOT" -eq 1 ]; then
    # TrackEval declares opencv-python (which would hide JetPack's GStreamer build) but imports it
    # only for segmentation metrics: install it alone, then its other requirements by name (its
    # floors ask NumPy 2 on Python 3.10, which JetPack's NumPy-1 modules cannot load). The version
    # bound is written once, in pyproject.toml's [mot] extra.
    TRACKEVAL="$(sed -n 's/^mot *= *\[ *"\(trackeval[^"]*\)".*/\1/p' "$REPO/pyproject.toml" | head -n 1)"
    [ -n "$TRACKEVAL" ] || die "cannot read the trackeval requirement of the [mot] extra from $REPO/pyproject.toml"
    run "$VENV/bin/python" -m pip install -c "$CONSTRAINTS" --no-deps "$TRACKEVAL" || die "pip could not install $TRACKEVAL: $PIP_FAILED"
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+ %q -m pip install -c %q -r REQUIREMENTS  # %s\n' "$VENV/bin/python" "$CONSTRAINTS" "TrackEval's requirements by name, but opencv-python"
    else
        TRACKEVAL_REQUIREMENTS="$(mktemp "${TMPDIR:-/tmp}/edge-reid-trackeval.XXXXXX")"
        "$VENV/bin/python" - "$TRACKEVAL_REQUIREMENTS" <<'PY' || die "TrackEval was installed but its requirements cannot be read"
import re, sys
from importlib.metadata import requires
names = [re.match(r"[A-Za-z0-9._-]+", r).group() for r in requires("trackeval") or [] if "extra ==" not in r]
kept = dict.fromkeys(n for n in names if not n.lower().startswith("opencv"))
open(sys.argv[1], "w").write("".join(f"{n}\n" for n in kept))
PY
        "$VENV/bin/python" -m pip install -c "$CONSTRAINTS" -r "$TRACKEVAL_REQUIREMENTS" \
            || die "pip could not install TrackEval's requirements: $PIP_FAILED"
        rm -f "$TRACKEVAL_REQUIREMENTS"
    fi
    say "TrackEval for edge-reid eval-mot, without pip's opencv-python (pip may list TrackEval's opencv-python and NumPy floors as unmet: expected, eval-mot needs neither)"
fi

if [ "$PIP_OPENCV" -eq 0 ]; then
    if [ "$DRY_RUN" -eq 0 ]; then
        "$VENV/bin/python" -c 'import cv2, re, sys; sys.exit(0 if re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) else 1)' \
            || warn "the OpenCV in $VENV has no GStreamer (CSI cameras will not open): if pip's OpenCV is installed there from an earlier run, remove it with: $Q_VENV/bin/python -m pip uninstall opencv-python-headless opencv-python; else install the system's: sudo apt install $OPENCV_PACKAGE"
    fi
    say "OpenCV: the system's, JetPack's or Ubuntu's (GStreamer: CSI and USB cameras)"
else
    say "OpenCV: pip's opencv-python-headless (no GStreamer: USB cameras and files, not CSI)"
fi

# --- 5. checks and report ---------------------------------------------------------------------
USER_NAME="${SUDO_USER:-$(id -un)}"
GROUPS_OF_USER="${EDGE_REID_USER_GROUPS:-$(id -nG "$USER_NAME" 2>/dev/null || true)}"
missing_groups=()
for group in video render; do
    case " $GROUPS_OF_USER " in
        *" $group "*) ;;
        *) missing_groups+=("$group") ;;
    esac
done
if [ "${#missing_groups[@]}" -gt 0 ]; then
    warn "user $USER_NAME is not in the group(s) ${missing_groups[*]}: CUDA (and so TensorRT) cannot start for them.
  Fix: sudo usermod -aG video,render $USER_NAME   then log out and in again"
else
    say "user $USER_NAME is in the video and render groups"
fi

if [ -n "$TRT_VERSION" ] && [ -d "$ENGINES_DIR" ]; then
    stale="$("$PYTHON" - "$ENGINES_DIR" "$TRT_VERSION" <<'PY' 2>/dev/null || true
import json, pathlib, sys
folder, version = pathlib.Path(sys.argv[1]), sys.argv[2]
for path in sorted(folder.glob("*.json")):
    try:
        built = json.loads(path.read_text()).get("tensorrt_version")
    except (OSError, ValueError, AttributeError):
        continue
    if built and built != version:
        print(f"{path.name} (TensorRT {built})")
PY
)"
    if [ -n "$stale" ]; then
        warn "engines in $ENGINES_DIR built by another TensorRT version are never loaded with TensorRT $TRT_VERSION; rebuild them with edge-reid build ... --rebuild (edge-reid doctor lists them):
$(printf '%s\n' "$stale" | sed 's/^/    /')"
    fi
fi

run "$VENV/bin/edge-reid" doctor --engines-dir "$ENGINES_DIR"
ENGINES_OPTION=""
[ "$ENGINES_DIR" = "engines" ] || ENGINES_OPTION=" --engines-dir $(printf '%q' "$ENGINES_DIR")"
say "done. Next:
  source $Q_VENV/bin/activate
  edge-reid build --precision fp16$ENGINES_OPTION          # builds the bundled model's engine on this Jetson
  edge-reid doctor --selftest$ENGINES_OPTION               # checks TensorRT and CUDA on this device, writes a JSON report
  edge-reid run --camera /dev/video0 --backend tensorrt --display$ENGINES_OPTION"
if [ "$PIP_OPENCV" -eq 0 ]; then
    say "CSI camera:
  edge-reid run --source 'nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=1' --backend tensorrt$ENGINES_OPTION"
fi
