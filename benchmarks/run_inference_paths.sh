#!/bin/sh
# The recorded run of benchmarks/results/inference-paths.md: the path chooser for pretrained Lite0
# (sample photos) and for an ELPV-fine-tuned B0 (held-out ELPV test images), then compiled batch 1.
# Usage: sh benchmarks/run_inference_paths.sh B0_ELPV_CHECKPOINT OUTDIR
set -e
CKPT=$1
OUT=${2:-benchmarks/results}
PY=${PYTHON:-python}
export EFFNET_PATHS_CACHE=${EFFNET_PATHS_CACHE:-$OUT/paths-cache.json}
date -u; uptime
grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|amx|fma|f16c|sse4)' | tr '\n' ' '; echo
$PY -m effnet bench --choose --models efficientnet_lite0 --pretrained --batch-sizes 1,8 --img-size 224 \
    --peers timm --repeats 20 --json "$OUT/inference-paths-lite0.json"
uptime
$PY -m effnet bench --choose --models "$CKPT" --data elpv --calib-images 200 --batch-sizes 1,8 \
    --peers torchvision,timm --repeats 20 --json "$OUT/inference-paths-b0-elpv.json"
uptime
$PY benchmarks/compile_batch1.py --model efficientnet_b0 --size 224 --repeats 20 --profile-calls 5 \
    --json "$OUT/inference-paths-compile.json"
uptime; date -u
