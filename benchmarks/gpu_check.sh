#!/bin/bash
# The speed checks that need a GPU, as one prepared run of at most 8 minutes on a lent H100 or H200: whether
# torch sees the GPU and the packages augment uses import, the default model's and classic's training steps/s
# at batch 64 (eager, then captured as CUDA graphs), and the default pipeline on the Fashion-MNIST-LT folder
# end to end with the judge's held-out reading. Every step's output goes to $OUT/<step>.log and its start, end
# and exit code to $OUT/steps.log.
#
# The image's python3 has torch, pandas, pyarrow, scikit-learn, matplotlib and pillow; augment runs from this
# checkout (PYTHONPATH), so nothing is installed. Fashion-MNIST's four .gz files travel in .fm/ (ignored by git):
#   mkdir -p .fm && cp $AUGMENT_FASHION/*.gz .fm/ && echo /.fm/ >> .git/info/exclude
#   device run: bash benchmarks/gpu_check.sh   (carry: [".fm"], timeout_s 540)
set -u
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 AUGMENT_FASHION=${AUGMENT_FASHION:-$PWD/.fm}

step() {  # step NAME SECONDS COMMAND...: run it under a time limit, log it, show its last lines
  local name=$1 limit=$2
  shift 2
  echo "== $(date +%T) $name: $*" | tee -a "$out/steps.log"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "== $(date +%T) $name exit $rc" | tee -a "$out/steps.log"
  tail -n 6 "$out/$name.log"
}

step gpu 20 nvidia-smi
step torch 60 python3 -c "import torch, pandas, pyarrow, sklearn, matplotlib, PIL; print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0))"
step eager 110 python3 benchmarks/throughput.py --configs default,classic --steps 400
step graphs 130 python3 benchmarks/throughput.py --configs default,classic --steps 400 --set train.compile=reduce-overhead
step pipeline 220 python3 benchmarks/pipeline_time.py --seed 0
