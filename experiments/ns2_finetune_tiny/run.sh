#!/usr/bin/env bash
# Prompt-only zero-shot vs speaker-adaptive fine-tuning on held-out synthetic voice 9000 (see README.md).
# One thread; run from the repository root:  nohup bash experiments/ns2_finetune_tiny/run.sh > outputs/ns2_finetune_tiny/run.log 2>&1 &
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
OUT=outputs/ns2_finetune_tiny
BASE=${BASE:-$OUT/base/checkpoints/last.ckpt}
STEPS=${STEPS:-100}
CODEC=experiments/codec_tiny/codec_tiny_harmonic.pth
if [ ! -f "$BASE" ]; then   # the base: NS2 tiny for 2000 steps (the full recipe is 10000)
  $PY -m ns2.cli.main train experiment=ns2/tiny codec.source=$CODEC logger=csv trainer.max_steps=2000 \
      +trainer.enable_progress_bar=false hydra.run.dir=$OUT/base
fi
$PY -m ns2.eval.studies.finetune subsets data/synthetic-small/prepared/manifest.jsonl --speaker 9000 \
    --counts 5 10 15 --out $OUT/data
systems=(--system "zero_shot=$BASE")
echo '{' > $OUT/timings.json
for n in 5 10 15; do
  t0=$(date +%s)
  $PY -m ns2.cli.main train experiment=ns2/finetune model.init_from=$BASE \
      data.datamodule.manifest=$OUT/data/n$n/prepared/manifest.jsonl trainer.max_steps=$STEPS \
      +trainer.limit_val_batches=0 logger=csv +trainer.enable_progress_bar=false hydra.run.dir=$OUT/ft_n$n
  echo "\"finetune_n${n}_seconds\": $(( $(date +%s) - t0 ))," >> $OUT/timings.json
  systems+=(--system "finetune_$n=$OUT/ft_n$n/checkpoints/last.ckpt")
done
echo "\"finetune_steps\": $STEPS}" >> $OUT/timings.json
$PY -m ns2.eval.studies.finetune evaluate $OUT/data/split.json "${systems[@]}" --extra $OUT/timings.json \
    --out experiments/ns2_finetune_tiny/results.json
