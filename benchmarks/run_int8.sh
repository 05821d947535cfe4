#!/bin/sh
# The recorded run of docs/int8.md: both INT8 paths (ONNX Runtime, OpenVINO through NNCF) beside fp32
# and bf16, chosen by `effnet bench --choose`, for pretrained Lite0 and random-weight B0 (sample
# photos), a Lite0 fine-tuned on ELPV and a B0 trained on Fashion-MNIST (held-out test images).
# Usage: sh benchmarks/run_int8.sh LITE0_ELPV_CHECKPOINT B0_FASHION_MNIST_CHECKPOINT [OUTDIR]
# The two checkpoints (as recorded):
#   effnet finetune efficientnet_lite0 --pretrained --data elpv --img-size 192 --epochs 4 --out RUN
#   effnet train --model efficientnet_b0 --data fashion-mnist --img-size 64 --epochs 3 --limit-per-class 1000 --out RUN
set -e
LITE0_ELPV=$1
B0_FM=$2
OUT=${3:-benchmarks/results}
PY=${PYTHON:-python}
export EFFNET_PATHS_CACHE=${EFFNET_PATHS_CACHE:-$OUT/paths-cache.json}
load() { echo "load: $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S)"; }
date -u; load
grep -m1 '^model name' /proc/cpuinfo
grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|amx|fma|f16c|sse4)' | tr '\n' ' '; echo
$PY -m effnet bench --choose --models efficientnet_lite0 --pretrained --batch-sizes 1,8 \
    --peers timm --repeats 30 --json "$OUT/int8-lite0.json"
load
$PY -m effnet bench --choose --models efficientnet_b0 --batch-sizes 1,8 \
    --paths eager,onnxruntime,openvino,int8,openvino_int8 --peers none --repeats 30 --json "$OUT/int8-b0.json"
load
$PY -m effnet bench --choose --models "$LITE0_ELPV" --data elpv --batch-sizes 1,8 \
    --peers none --repeats 20 --json "$OUT/int8-lite0-elpv.json"
load
$PY -m effnet bench --choose --models "$B0_FM" --data fashion-mnist --batch-sizes 1,8 \
    --peers none --repeats 20 --json "$OUT/int8-b0-fashion-mnist.json"
load
# speed only (random weights), both INT8 paths against our fp32 ONNX Runtime model and timm's
$PY -m effnet bench --models efficientnet_b0,efficientnet_lite0 --batch-sizes 1,8 \
    --paths eager,onnxruntime,int8,openvino_int8 --peers timm --repeats 20 --json "$OUT/int8-speed.json"
load; date -u
