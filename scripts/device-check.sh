#!/usr/bin/env bash
# The device check (issue 20): one command that proves sftkit on an NVIDIA GPU machine that has Python torch, nvcc,
# cmake and ninja but no Node and no network, and the same steps on the CPU in CI.
#
#   scripts/device-check.sh [--cpu] [--quick] [--no-build] [--budget SECONDS] [--native-suite full|subset|skip]
#                           [--only correctness,training,throughput]
#
# GPU (default): unpacks .device/ (`npm run device:pack` here; the device tool carries `.device`): node and the
# production node_modules; builds the addon into build/ against the machine's Python torch
# (SFTKIT_LIBTORCH_USE_PYTORCH=1, the version check bypassed with SFTKIT_SKIP_LIBTORCH_VERSION_CHECK=1 and reported)
# for the visible GPU's CUDA architecture; then bench/device/check.ts: correctness (the native suite, CPU-vs-CUDA
# parity, generation), training (the shipped model, LoRA, DPO) and throughput (sftkit vs PyTorch eager and
# torch.compile). --cpu: the same steps on the CPU with tiny shapes, with the node on PATH and the addon already built
# (built first only when build/Release/sftkit.node is missing and --no-build is not given).
# Results: $OUT (the device tool's folder) or ./device-out: results.json, results.md, check.log, build.log,
# native-suite.log. Exit code 0 when no step failed.
set -uo pipefail
T0=$(date +%s)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
MODE=cuda QUICK=0 BUILD=1 BUDGET="" NATIVE="" ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu ;;
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --budget) BUDGET="$2"; shift ;;
    --native-suite) NATIVE="$2"; shift ;;
    --only) ONLY="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "device-check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
# The whole GPU run must fit in one 9-minute command, build included; --quick in about 5.
if [ -z "$BUDGET" ] && [ "$MODE" = cuda ]; then
  if [ "$QUICK" = 1 ]; then BUDGET=330; else BUDGET=530; fi
fi
OUT="${OUT:-$ROOT/device-out}"
mkdir -p "$OUT"
WORK="${TMPDIR:-/tmp}/sftkit-device-check"
mkdir -p "$WORK"
log() { echo "[device-check +$(( $(date +%s) - T0 ))s] $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---- Python: the GPU machine's venv first (its bin/ also holds cmake and ninja) ----------------------------------
PY=""
for c in "${PYTHON:-}" /opt/torch/.venv/bin/python3 python3; do
  if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then PY=$(command -v "$c"); break; fi
done
if [ -n "$PY" ]; then export PATH="$(dirname "$PY"):$PATH"; fi
log "mode $MODE$([ "$QUICK" = 1 ] && echo ' (quick)'), results in $OUT, python ${PY:-none}"

# xz -d of $1 into $2 (the xz command, else Python's lzma).
unxz_to() {
  if command -v xz >/dev/null 2>&1; then xz -dc "$1" > "$2"
  elif [ -n "$PY" ]; then "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  else return 1; fi
}

# ---- node ---------------------------------------------------------------------------------------------------------
if [ "$MODE" = cpu ] && command -v node >/dev/null 2>&1; then
  log "node: $(command -v node) $(node --version) (on PATH)"
elif [ -f .device/node.xz ]; then
  mkdir -p "$WORK/bin"
  if [ ! -x "$WORK/bin/node" ] || [ .device/node.xz -nt "$WORK/bin/node" ]; then
    unxz_to .device/node.xz "$WORK/bin/node.tmp" || die "cannot unpack .device/node.xz (no xz and no Python)"
    chmod +x "$WORK/bin/node.tmp" && mv "$WORK/bin/node.tmp" "$WORK/bin/node"
  fi
  export PATH="$WORK/bin:$PATH"
  log "node: unpacked .device/node.xz: $(node --version)"
elif command -v node >/dev/null 2>&1; then
  log "node: $(command -v node) $(node --version) (on PATH; no .device/node.xz)"
else
  die "no node: run \`npm run device:pack\` where Node is and carry .device"
fi

# ---- node_modules -------------------------------------------------------------------------------------------------
if [ ! -f node_modules/tsx/package.json ]; then
  [ -f .device/node_modules.tar.xz ] || die "no node_modules and no .device/node_modules.tar.xz (npm run device:pack)"
  if command -v xz >/dev/null 2>&1; then
    tar -xJf .device/node_modules.tar.xz -C "$ROOT" || die "cannot unpack .device/node_modules.tar.xz"
  else
    "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' .device/node_modules.tar.xz "$ROOT" || die "cannot unpack .device/node_modules.tar.xz"
  fi
  log "node_modules: unpacked .device/node_modules.tar.xz ($(ls node_modules | wc -l) entries)"
fi

# ---- the addon ----------------------------------------------------------------------------------------------------
BUILD_JSON="$WORK/build.json"
BUILT=false BUILD_SECONDS=0 BUILD_NOTE="" CUDA_ARCH="" TOOLKIT="" TORCH_DIR="" FALLBACK=false NCCL_OFF=false
build_native() { # extra defines as JSON in $DEFINES
  node --input-type=module -e '
    const { buildNative } = await import("./scripts/build-native.mjs");
    await buildNative({ extraDefines: JSON.parse(process.env.DEFINES || "{}") });
  '
}
if [ "$MODE" = cuda ] && [ "$BUILD" = 1 ]; then
  [ -n "$PY" ] || die "no python3 with torch: the GPU build uses the machine's Python torch"
  TORCH_DIR=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))') || die "$PY cannot import torch"
  # A libtorch.json of another libtorch (carried, or a CPU record) would win over SFTKIT_LIBTORCH_USE_PYTORCH.
  if [ -f libtorch.json ] && ! grep -q "\"path\": \"$TORCH_DIR\"" libtorch.json; then
    mv libtorch.json "$WORK/libtorch.json.before"
    log "moved a libtorch.json of another libtorch aside ($WORK/libtorch.json.before)"
  fi
  CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' ')
  [ -n "$CAP" ] || CAP=$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability(0))' 2>/dev/null)
  [ -n "$CAP" ] || die "no GPU visible (nvidia-smi and torch.cuda give no compute capability)"
  CUDA_ARCH=${CAP/./}
  NVCC=$(command -v nvcc || true)
  for c in /usr/local/cuda/bin/nvcc "${CUDA_HOME:-/nonexistent}/bin/nvcc"; do [ -z "$NVCC" ] && [ -x "$c" ] && NVCC=$c; done
  [ -n "$NVCC" ] || die "no nvcc (CUDA toolkit) on PATH or in /usr/local/cuda"
  TOOLKIT=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
  export SFTKIT_LIBTORCH_USE_PYTORCH=1 SFTKIT_SKIP_LIBTORCH_VERSION_CHECK=1 PYTHON="$PY" TORCH_CUDA_ARCH_LIST="$CAP"
  log "build: torch $("$PY" -c 'import torch; print(torch.__version__)') at $TORCH_DIR, compute capability $CAP (CMAKE_CUDA_ARCHITECTURES=$CUDA_ARCH), nvcc $NVCC"
  log "build: $(nproc) cores; the log is $OUT/build.log"
  B0=$(date +%s)
  export DEFINES="{\"CMAKE_CUDA_ARCHITECTURES\":\"$CUDA_ARCH\",\"CMAKE_CUDA_COMPILER\":\"$NVCC\",\"CUDAToolkit_ROOT\":\"$TOOLKIT\",\"CUDA_TOOLKIT_ROOT_DIR\":\"$TOOLKIT\"}"
  if CUDA_HOME="$TOOLKIT" CUDACXX="$NVCC" build_native > "$OUT/build.log" 2>&1; then
    BUILT=true
  else
    tail -25 "$OUT/build.log" >&2
    # The toolkit may lack libraries the Python torch links (they live in the venv's nvidia-* wheels): the same build
    # against a toolkit root assembled from both (scripts/cuda-toolkit.mjs), from a fresh CMake cache.
    NVIDIA=$("$PY" -c 'import os, sysconfig; print(os.path.join(sysconfig.get_paths()["purelib"], "nvidia"))')
    TOOLKIT="$WORK/cuda-toolkit"
    log "build failed; again against $TOOLKIT ($(dirname "$(dirname "$NVCC")") + $NVIDIA)"
    node --input-type=module -e '
      const { assembleToolkit } = await import("./scripts/cuda-toolkit.mjs");
      assembleToolkit({ nvcc: process.argv[1], nvidiaDirs: [process.argv[2]], out: process.argv[3] });
    ' "$NVCC" "$NVIDIA" "$TOOLKIT" || die "could not assemble a toolkit root"
    rm -rf build/CMakeCache.txt build/CMakeFiles
    FALLBACK=true
    export DEFINES="{\"CMAKE_CUDA_ARCHITECTURES\":\"$CUDA_ARCH\",\"CMAKE_CUDA_COMPILER\":\"$TOOLKIT/bin/nvcc\",\"CUDAToolkit_ROOT\":\"$TOOLKIT\",\"CUDA_TOOLKIT_ROOT_DIR\":\"$TOOLKIT\"}"
    if CUDA_HOME="$TOOLKIT" CUDACXX="$TOOLKIT/bin/nvcc" build_native >> "$OUT/build.log" 2>&1; then BUILT=true; else tail -40 "$OUT/build.log" >&2; fi
  fi
  # The NCCL path (native/engine/distributed.cc against this torch's ProcessGroupNCCL.hpp and the venv's nccl.h) has only
  # been compiled against torch 2.14.1: if that file is what failed, the rest of the check still runs without it.
  if [ "$BUILT" != true ] && grep -qE 'FAILED: .*distributed\.cc\.o|distributed\.cc\.o\] Error' "$OUT/build.log"; then
    log "build failed in native/engine/distributed.cc; again with -DSFTKIT_NCCL=OFF (Gloo only; the NCCL step will be skipped)"
    DEFINES=$(node -e 'const d = JSON.parse(process.env.DEFINES); d.SFTKIT_NCCL = "OFF"; console.log(JSON.stringify(d))')
    export DEFINES
    NCCL_OFF=true
    if CUDA_HOME="$TOOLKIT" CUDACXX="$(node -p 'JSON.parse(process.env.DEFINES).CMAKE_CUDA_COMPILER')" build_native >> "$OUT/build.log" 2>&1; then BUILT=true; else tail -40 "$OUT/build.log" >&2; fi
  fi
  BUILD_SECONDS=$(( $(date +%s) - B0 ))
  [ "$BUILT" = true ] || { BUILD_NOTE="the build failed: see build.log"; log "build FAILED after ${BUILD_SECONDS}s"; }
  [ "$BUILT" = true ] && log "build: done in ${BUILD_SECONDS}s"
elif [ ! -f build/Release/sftkit.node ] && [ ! -d prebuilds ] && [ "$BUILD" = 1 ]; then
  log "build: no build/Release/sftkit.node; node scripts/build-native.mjs"
  B0=$(date +%s)
  node scripts/build-native.mjs > "$OUT/build.log" 2>&1 && BUILT=true || { tail -25 "$OUT/build.log" >&2; BUILD_NOTE="the build failed: see build.log"; }
  BUILD_SECONDS=$(( $(date +%s) - B0 ))
else
  BUILD_NOTE="not rebuilt ($([ "$BUILD" = 0 ] && echo '--no-build' || echo 'the built addon is used'))"
fi
# What was built against (read back from libtorch.json), for results.json.
BUILT="$BUILT" BUILD_SECONDS="$BUILD_SECONDS" BUILD_NOTE="$BUILD_NOTE" CUDA_ARCH="$CUDA_ARCH" TOOLKIT="$TOOLKIT" FALLBACK="$FALLBACK" NCCL_OFF="$NCCL_OFF" MODE="$MODE" \
  node -e '
    const fs = require("fs");
    const e = process.env;
    let record = null;
    try { record = JSON.parse(fs.readFileSync("libtorch.json", "utf8")); } catch {}
    const out = {
      built: e.BUILT === "true", seconds: Number(e.BUILD_SECONDS), note: e.BUILD_NOTE || undefined,
      libtorch: record && { version: record.version, variant: record.variant, cuda: record.cuda, source: record.source, path: record.path },
      versionCheckBypassed: e.SFTKIT_SKIP_LIBTORCH_VERSION_CHECK === "1",
      pinned: "2.13.0",
      cudaArchitectures: e.CUDA_ARCH || undefined, cudaToolkit: e.TOOLKIT || undefined, toolkitFallback: e.FALLBACK === "true",
      ncclOff: e.NCCL_OFF === "true" || undefined,
    };
    fs.writeFileSync(process.argv[1], JSON.stringify(out, null, 2));
  ' "$BUILD_JSON"
if [ "$MODE" = cuda ] && [ "$BUILD" = 1 ] && [ "$BUILT" != true ]; then
  log "no addon: the checks cannot run; results.json records the failed build"
fi

# ---- the checks ---------------------------------------------------------------------------------------------------
ARGS=(--device "$MODE" --out "$OUT" --started-at "$T0" --build-json "$BUILD_JSON")
[ "$QUICK" = 1 ] && ARGS+=(--quick)
[ -n "$BUDGET" ] && ARGS+=(--budget "$BUDGET")
[ -n "$NATIVE" ] && ARGS+=(--native-suite "$NATIVE")
[ -n "$ONLY" ] && ARGS+=(--only "$ONLY")
[ -n "$PY" ] && ARGS+=(--python "$PY")
# SFTKIT_AUTO_SETUP=0: an addon that does not load is a failed step, never an install run from inside the check.
SFTKIT_AUTO_SETUP=0 node --import tsx bench/device/check.ts "${ARGS[@]}" 2>&1 | tee "$OUT/check.log"
RC=${PIPESTATUS[0]}
log "exit $RC; $OUT/results.md:"
cat "$OUT/results.md" 2>/dev/null || true
exit "$RC"
