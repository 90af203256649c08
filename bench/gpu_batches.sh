#!/usr/bin/env bash
# Does batch building keep up with a fast GPU? On a GPU machine, from the project root:
#     KERAS_BACKEND=jax bash bench/gpu_batches.sh [OUT_FOLDER]     (or torch, or tensorflow)
# Times batch building alone on 1..12 threads, from HDF5 and held in memory (SAMPLER=0 skips
# it), then train() (which holds the files in memory on a GPU since 2026-12-04) against plain
# fit on ready-made tensors (bench/training.py) at batch 16 of 256², and at what
# `train --auto` picks on a GPU (batch 16 of 512²) with train()'s 2 batch-building threads and
# with 8; SMALL=1 adds the CPU default (batch 2 of 256²). A generated 165 x 768 x 1024 stand-in
# replaces lucchi-pp, so nothing from ../shared is needed. bfloat16 mixed precision, as
# on any GPU of compute capability >= 8. Results: bench/README.md, "Batch building on a GPU".
set -o pipefail
out=${1:-/tmp}
work=$(mktemp -d)
b="${PYTHON:-python3} bench/training.py --synthetic --work $work --skip-rss --no-busy --mixed-precision"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "backend ${KERAS_BACKEND:-tensorflow}, $(nproc) CPU cores"
  if [ "${SAMPLER:-1}" = 1 ]; then
    $b --skip-throughput --sampler-alone --sampler-threads 1,2,4,8,12
    $b --skip-throughput --sampler-alone --sampler-threads 1,2,4,8 --patch 512 --batch 16
  fi
  if [ "${SMALL:-0}" = 1 ]; then $b --steps 300 --warmup 20; fi
  $b --steps 100 --warmup 10 --batch 16
  $b --steps 40 --warmup 5 --batch 16 --patch 512
  $b --steps 40 --warmup 5 --batch 16 --patch 512 --workers 8
} 2>&1 | grep -v -i "warning\|oneDNN\|cpu_feature_guard\|rebuild TensorFlow" | tee "$out/gpu_batches.log"
rm -rf "$work"
