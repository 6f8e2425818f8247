#!/usr/bin/env bash
# The GPU part of the accuracy issue, as ONE call of the device tool (a GPU machine that receives only the
# working tree, has torch/PyYAML/tqdm/tensorboard and no network):
#
#   1. throughput: python -m benchmarks.gpu (NTU-300 and the 2-D recipe shape, batch 16 and 128,
#      fp32 / AMP bf16 / AMP bf16 + torch.compile, ours against the original structure, same run);
#   2. NW-UCLA with the shipped CTR-GCN recipe unchanged (configs/nw-ucla-*.yaml: 65 epochs x 5 repeats, batch 16,
#      with train.amp=bf16): joint with seeds 1, 2, 3, bone / joint-motion / bone-motion with seed 1, as six
#      concurrent processes on the one GPU, each stopped after $BUDGET seconds if not done (it then keeps its
#      last.pt, and --resume on a later machine continues it);
#   3. stgcn eval of every run's final.pt (else last.pt), stgcn fuse of joint+bone and of the four streams;
#   and packs everything small (metrics.jsonl, config, eval JSON/CSV) into $OUT/nw-ucla-gpu.tgz.
#
# Prepare on the CPU machine first (the store must travel in the working tree; data/ is git-ignored):
#   stgcn prepare nw-ucla ../shared/data/nw_ucla/all_sqe data/nw-ucla
# then, on the device:
#   run(command="BUDGET=330 bash benchmarks/gpu_session.sh", carry=["data/nw-ucla"], timeout_s=590)
# Dry run here on the CPU (tiny: 1 epoch of 1 pass over a 20-clip subsample, 2 benchmark rounds):
#   DRY=1 OUT=/tmp/gpu-dry bash benchmarks/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
BUDGET=${BUDGET:-330}
DRY=${DRY:-0}
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/session.log"; }

python -c "import stgcn" 2>/dev/null || pip install -q --no-deps --no-build-isolation -e . \
    || export PYTHONPATH=$PWD
if [ "$DRY" = 1 ]; then
    DEVICE=cpu STORE=data/nw-ucla-tiny RUNS=runs/gpu-dry
    [ -d "$STORE" ] || python -m benchmarks.small_data --subsample data/nw-ucla "$STORE" 2
    EXTRA=(--set train.epochs=1 --set train.repeat=1 --set optim.warmup_epochs=0 --set "optim.milestones=[1]"
           --set data.preprocess.length=16 --set train.num_workers=0)
    BENCH=(--device cpu --quick --shapes coco2d-100 --precisions fp32)
    THREADS=1
else
    DEVICE=cuda STORE=data/nw-ucla RUNS=runs/gpu
    EXTRA=(--set train.amp=bf16 --set train.num_workers=2)
    BENCH=(--device cuda --rounds 10 --warmup 3)
    THREADS=2
fi
rm -rf "$RUNS"
mkdir -p "$RUNS"
{ nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; python -c "import torch; print(torch.__version__, \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"; } > "$OUT/device.txt" 2>&1
log "device: $(tail -n 1 "$OUT/device.txt")"

# 2. the six trainings start first (they are the long part); the benchmark shares the GPU with them only
#    while they load data, so it runs after they end
declare -A RUN_CONFIG=([joint-s1]=joint [joint-s2]=joint [joint-s3]=joint [bone-s1]=bone
                      [joint_motion-s1]=joint-motion [bone_motion-s1]=bone-motion)
pids=()
for name in "${!RUN_CONFIG[@]}"; do
    seed=${name##*-s}
    OMP_NUM_THREADS=$THREADS timeout --signal=INT "$BUDGET" stgcn train "configs/nw-ucla-${RUN_CONFIG[$name]}.yaml" \
        --out "$RUNS/$name" --quiet --set "data.store=$STORE" --set "train.seed=$seed" \
        --set "train.device=$DEVICE" "${EXTRA[@]}" > "$OUT/train-$name.log" 2>&1 &
    pids+=($!)
done
log "started ${#pids[@]} trainings (budget ${BUDGET}s each)"
for pid in "${pids[@]}"; do wait "$pid"; done
log "trainings ended"

# 3. evaluation and fusion
for name in "${!RUN_CONFIG[@]}"; do
    ckpt="$RUNS/$name/final.pt"
    [ -f "$ckpt" ] || ckpt="$RUNS/$name/last.pt"
    if [ -f "$ckpt" ]; then
        stgcn eval "$ckpt" "$STORE" --device "$DEVICE" --out "$RUNS/$name/eval-test" --no-plot --json \
            > "$RUNS/$name/eval-test.json" 2>> "$OUT/session.log" || log "eval $name failed"
    else
        log "$name: no checkpoint"
    fi
done
stgcn fuse "$RUNS/joint-s1/eval-test" "$RUNS/bone-s1/eval-test" --out "$RUNS/fuse-jb" --no-plot --json \
    > "$RUNS/fuse-jb.json" 2>> "$OUT/session.log" || log "fuse J+B failed"
stgcn fuse "$RUNS"/{joint-s1,bone-s1,joint_motion-s1,bone_motion-s1}/eval-test --out "$RUNS/fuse-4s" --no-plot \
    --json > "$RUNS/fuse-4s.json" 2>> "$OUT/session.log" || log "fuse 4-stream failed"
log "evaluation done"

# 1. throughput (after the trainings, on an otherwise idle GPU)
if [ "${SKIP_BENCH:-0}" != 1 ]; then
    python -m benchmarks.gpu "${BENCH[@]}" --out "$OUT/gpu.json" > "$OUT/gpu.txt" 2>&1 || log "benchmark failed"
    log "benchmark done"
fi

tar czf "$OUT/nw-ucla-gpu.tgz" --exclude='*.pt' -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
log "packed $OUT/nw-ucla-gpu.tgz"
