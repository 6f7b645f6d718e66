#!/usr/bin/env bash
# The GPU run, in one script (under 10 minutes on one GPU: every step has its own time limit, 600 s in all):
#   1. scripts/device_check.py: the oracle on the device (right and wrong derivations, Reproduce lines);
#   2. tests/test_on_device.py: every kind of oracle check as a property test on CUDA tensors, both dtypes;
#   3. benchmarks/train_step.py --device cuda: interleaved rounds, synchronised timing, TF32 off;
#   4. benchmarks/scaling.py --device cuda: the width x batch map, then the transformer's (D x N) and
#      the CNN's (F x N) maps of manual's AdamW step against torch.optim.AdamW's (short grids);
#   5. benchmarks/hvp.py --device cuda: the Hessian-vector product by hand against double backward;
#   6. benchmarks/layers.py --device cuda: each layer's backward by hand against autograd's (a short run);
#   7. benchmarks/networks.py --device cuda: whole networks' training steps by hand against autograd + AdamW.
# Writes benchmarks/results/cuda-<card>.* (the card's name from torch), or into $OUT_DIR if set.
#
#   bash benchmarks/gpu.sh            # on a machine with a CUDA device
#   bash benchmarks/gpu.sh rehearse   # the same steps on the CPU, shortened, into a temporary folder
#
# Needs the project with its test and plot extras: pip install -e ".[test,plot]" (keep the machine's torch).
# A step that fails is reported and the script goes on; its exit status is 1 if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=${1:-cuda}
if [ "$mode" != cuda ] && [ "$mode" != rehearse ]; then
    echo "gpu.sh: unknown mode '$mode'; give none (the GPU run) or 'rehearse' (the same steps on the CPU)" >&2
    exit 2
fi
if [ "$mode" = rehearse ]; then
    device=cpu card=rehearsal quick=(--quick --cases 2-2-1/b1 --rounds 3) grid=(--widths 64,128 --batches 1,16 --rounds 3)
    transformer_grid=(--widths 32,64 --batches 1,4 --rounds 3 --block 0.01 --threads 1) cnn_grid=(--widths 8,16 --batches 1,8 --rounds 3 --block 0.01 --threads 1)
    hvp=(--quick --rounds 3) layers=(--quick --sizes small --rounds 3) networks=(--quick --sizes small --rounds 3)
    out_dir=${OUT_DIR:-$(mktemp -d)}
else
    device=cuda quick=() grid=(--max-gflop 400) hvp=()
    transformer_grid=(--widths 64,256,1024 --batches 1,16,64 --max-gflop 400)
    cnn_grid=(--widths 16,64,256 --batches 1,32,256 --max-gflop 400)
    layers=(--quick --rounds 5) networks=(--quick --rounds 5)
    card=$(python -c "
import re, sys, torch
if not torch.cuda.is_available():
    sys.exit('gpu.sh: no CUDA device is visible to torch here (nothing run)')
print(re.sub(r'[^A-Za-z0-9]+', '-', torch.cuda.get_device_name()).strip('-'))
") || exit 2
    out_dir=${OUT_DIR:-benchmarks/results}
fi
mkdir -p "$out_dir"
out=$out_dir/$device-$card
failed=0
start=$SECONDS

step() {  # step NAME SECONDS COMMAND...: run with a time limit, output to the terminal and $out.NAME.txt
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s): $*"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$out.$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$out.$name.txt"
    [ "$rc" -eq 0 ] || failed=1
}

{
    python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
} > "$out.machine.txt" 2>&1

step device_check 60 python scripts/device_check.py --device "$device" --examples 100
BACKPROP_DEVICE=$device BACKPROP_DEVICE_EXAMPLES=100 step tests 105 python -m pytest -q -p no:cacheprovider tests/test_on_device.py
step train_step 150 python benchmarks/train_step.py --device "$device" --no-oracle "${quick[@]}" \
    --json "$out.train_step.json" --plot "$out.train_step.png"
step scaling 75 python benchmarks/scaling.py --device "$device" "${grid[@]}" \
    --json "$out.scaling.json" --plot "$out.scaling.png"
step scaling_transformer 40 python benchmarks/scaling.py --model transformer --device "$device" "${transformer_grid[@]}" \
    --json "$out.scaling_transformer.json" --plot "$out.scaling_transformer.png"
step scaling_cnn 40 python benchmarks/scaling.py --model cnn --device "$device" "${cnn_grid[@]}" \
    --json "$out.scaling_cnn.json" --plot "$out.scaling_cnn.png"
step hvp 60 python benchmarks/hvp.py --device "$device" "${hvp[@]}" --json "$out.hvp.json"
step layers 40 python benchmarks/layers.py --device "$device" "${layers[@]}" --json "$out.layers.json"
step networks 30 python benchmarks/networks.py --device "$device" "${networks[@]}" --json "$out.networks.json"

echo "gpu.sh: $((SECONDS - start)) s in all; results in $out.*; $([ $failed -eq 0 ] && echo 'every step passed' || echo 'a step FAILED')"
exit $failed
