#!/usr/bin/env bash
# One prepared GPU check for a lent H100/H200 within a 6-minute budget (BUDGET_S, wheels install included;
# a lent device has ~15 minutes in all, start-up included), with only the wheels it carries:
#   1. the `gpu` tests (pytest -m gpu: bf16 QLoRA and full steps on CUDA),
#   2. bench/train_throughput.py --gpu --methods lora: lima vs TRL SFTTrainer on an 8B-shaped model,
#      tokens/s, MFU and peak memory,
#   3. bench/estimate_check.py: `lima estimate` vs torch.cuda.max_memory_allocated for one LoRA and one
#      QLoRA step of that 8B-shaped model (1,024 tokens),
#   4. one QLoRA `lima train` (the real CLI) of that 8B-shaped model (random weights, a few steps),
# and writes bench/results/gpu_check_<device>.json (+ the bench's train_throughput_gpu_<device>.json/.md,
# estimate_check_<device>.json and the logs) named after the device nvidia-smi reports. Each step has its
# own time limit, cut to what is left of the budget; the summary is rewritten after every step, so a step
# that fails or runs out of time is recorded as such, and what finished is kept.
#
#   bash bench/gpu_check.sh [--wheels DIR] [--out DIR]    # on the GPU machine (DIR default: bench/results)
#   bash bench/gpu_check.sh --smoke [--out DIR]           # the same steps on CPU with tiny models (make test)
#
# The device machine has torch, accelerate, pytest and a python3 but no registry: the missing packages travel
# as wheels (see bench/train_throughput.py's docstring for the one pip download), installed with
# --no-index into a private folder. --wheels DIR (or $LIMA_WHEELS; default .whl when it exists). A device
# call, with carry [".whl"] and timeout_s 600:
#   PYTHONUNBUFFERED=1 bash bench/gpu_check.sh --out $OUT
# then copy $OUT's files into bench/results/.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SMOKE=0
OUT=""
WHEELS="${LIMA_WHEELS:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --out) OUT="$2"; shift ;;
    --wheels) WHEELS="$2"; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$SMOKE" = 1 ]; then
  PYTHON="${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}"
  OUT="${OUT:-$(mktemp -d /tmp/gpu-check-smoke-XXXX)}"  # a smoke run never overwrites committed results
  LIMITS=(120 240 120 120)  # seconds for steps 1-4
  BUDGET_S=420              # the smoke run's whole budget (CPU, shared build machine)
  LAYERS=2                  # the bench's tiny smoke Llama
else
  PYTHON="${PYTHON:-python3}"
  OUT="${OUT:-$ROOT/bench/results}"
  LIMITS=(35 150 100 60)
  BUDGET_S=360              # 6 minutes, wheels install included
  LAYERS=32                 # the bench's Llama-3.1-8B shape
  if [ -z "$WHEELS" ] && [ -d "$ROOT/.whl" ]; then WHEELS="$ROOT/.whl"; fi
fi
if [ "$SMOKE" = 1 ]; then
  DEVICE="cpu-smoke"
else
  DEVICE="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)"
  [ -n "$DEVICE" ] || { echo "gpu_check.sh: nvidia-smi finds no GPU; on CPU run --smoke" >&2; exit 2; }
fi
mkdir -p "$OUT"
# Models and runs in memory when /dev/shm has room for the 8B checkpoints (~22 GB), else on disk.
BASE="${TMPDIR:-/tmp}"
if [ "$SMOKE" = 0 ] && [ "$(df --output=avail -B1G /dev/shm 2>/dev/null | tail -n 1)" -gt 40 ] 2>/dev/null; then
  BASE=/dev/shm
fi
WORK="$(mktemp -d "$BASE/gpu-check-XXXX")"
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if [ "$SMOKE" = 1 ]; then export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"; fi

START=$SECONDS
if [ -n "$WHEELS" ]; then
  compgen -G "$WHEELS/*.whl" >/dev/null || { echo "gpu_check.sh: --wheels $WHEELS holds no .whl files" >&2; exit 2; }
  echo "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS ..."
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
    "$WHEELS"/*.whl || { echo "gpu_check.sh: installing the wheels from $WHEELS failed" >&2; exit 2; }
  export PYTHONPATH="$WORK/site:$PYTHONPATH"
fi

SLUG="$(echo "$DEVICE" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')"
echo "device: $DEVICE -> results in $OUT (*_$SLUG.*); time budget ${BUDGET_S}s (steps: ${LIMITS[*]}s)"

STATUS=()  # one "name rc seconds" per step
SUMMARY_RC=1
summarize() {  # rewrites gpu_check_<device>.json from what has finished so far
  "$PYTHON" - "$OUT/gpu_check_${SLUG}.json" "$DEVICE" "$BENCH_OUT" "$WORK/qlora-run" "$((SECONDS - START))" \
    "$BUDGET_S" "$ESTIMATE_OUT" "${STATUS[@]}" <<'EOF'
"""The check's summary: each step's exit status and time, the bench's table, the QLoRA run's manifest."""
import json
import sys
from pathlib import Path

out, device, bench, run, total, budget, estimate, *steps = sys.argv[1:]
summary = {"device": device, "total_s": int(total), "budget_s": int(budget), "steps": {}}
for step in steps:
    name, rc, seconds = step.split()
    summary["steps"][name] = {"exit": rc if rc == "skipped" else int(rc), "seconds": int(seconds),
                              "timed_out": rc in ("124", "137")}
if Path(bench).is_file():
    results = json.loads(Path(bench).read_text())["results"]
    summary["throughput"] = {f"{method} {side}": {k: r.get(k) for k in ("status", "tokens_per_s", "mfu", "peak_memory_gib")}
                             for method, row in results.items() for side, r in row.items() if isinstance(r, dict)}
if Path(estimate).is_file():
    checks = json.loads(Path(estimate).read_text())["results"]
    summary["estimate_check"] = {method: {k: r.get(k) for k in ("estimate_gib", "measured_gib", "ratio", "within_10pct", "error")}
                                 for method, r in checks.items()}
manifest = Path(run) / "manifest.json"
if manifest.is_file():
    m = json.loads(manifest.read_text())
    log = [json.loads(line) for line in (Path(run) / "train_log.jsonl").read_text().splitlines()]
    summary["qlora_train"] = {
        "status": m["status"], "steps": m.get("global_step"), "train_runtime_s": m.get("train_runtime_s"),
        "tokens_seen": m.get("tokens_seen"), "peak_gpu_memory_gib": m.get("peak_gpu_memory_gib"),
        "quantized_base": {k: v for k, v in (m.get("quantized_base") or {}).items() if k != "after"},
        "losses": [r["loss"] for r in log], "world_size": m.get("world_size"),
    }
summary["ok"] = all(s["exit"] in (0, "skipped") for s in summary["steps"].values()) and \
    summary.get("qlora_train", {}).get("status") == "ok" and "qlora_train" in summary["steps"]
Path(out).write_text(json.dumps(summary, indent=2) + "\n")
sys.exit(0 if summary["ok"] else 1)
EOF
  SUMMARY_RC=$?
}
BENCH_OUT="$OUT/train_throughput_gpu_${SLUG}.json"
ESTIMATE_OUT="$OUT/estimate_check_${SLUG}.json"
run_step() {  # name, limit (s), log file, command...
  local name="$1" limit="$2" log="$3"; shift 3
  local t0=$SECONDS left=$((BUDGET_S - (SECONDS - START)))
  if [ "$left" -lt 10 ]; then
    STATUS+=("$name skipped 0"); echo "== $name: skipped (the ${BUDGET_S}s budget is spent)"; summarize; return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  STATUS+=("$name $rc $((SECONDS - t0))")
  echo "== $name: exit $rc after $((SECONDS - t0))s"
  summarize
}

# 1. the gpu tests, from the test files that mark any (skipped without CUDA: the smoke run checks that they
#    collect and that the step runs)
run_step gpu_tests "${LIMITS[0]}" "$OUT/gpu_check_${SLUG}_pytest.log" \
  "$PYTHON" -m pytest -q -p no:cacheprovider -rs -m gpu $(grep -rl --include='test_*.py' 'mark.gpu' tests | sort)

# 2. the throughput bench; its models stay in $WORK for step 3
BENCH_OUT="$OUT/train_throughput_gpu_${SLUG}.json"
MODE="--gpu --methods lora --timed-steps 4"; [ "$SMOKE" = 1 ] && MODE="--smoke --timed-steps 1"  # smoke: seconds
run_step throughput "${LIMITS[1]}" "$OUT/gpu_check_${SLUG}_bench.log" \
  "$PYTHON" bench/train_throughput.py $MODE --out "$BENCH_OUT" --work "$WORK" --keep-work --job-timeout 70

MODEL="$(ls -d "$WORK"/bench-gpu-*/llama-${LAYERS}L 2>/dev/null | head -n 1)"
DATA="$(ls "$WORK"/bench-gpu-*/data-*.jsonl 2>/dev/null | head -n 1)"

# 3. lima estimate against the measured peak of the same LoRA and QLoRA step
ESTIMATE_OUT="$OUT/estimate_check_${SLUG}.json"
if [ -n "$MODEL" ]; then
  if [ "$SMOKE" = 1 ]; then EXTRA=(--max-length 64 --set precision=fp32); else EXTRA=(--max-length 1024); fi
  run_step estimate_check "${LIMITS[2]}" "$OUT/gpu_check_${SLUG}_estimate.log" \
    "$PYTHON" bench/estimate_check.py --model "$MODEL" --methods lora,qlora "${EXTRA[@]}" --out "$ESTIMATE_OUT"
else
  STATUS+=("estimate_check skipped 0"); summarize
  echo "== estimate_check: skipped (the bench built no model)"
fi

# 4. one QLoRA `lima train` of the bench's full-depth model (8B-shaped on the GPU), on the bench's data
if [ "$SMOKE" = 1 ]; then LENGTH=128; else LENGTH=1024; fi
if [ -n "$MODEL" ] && [ -n "$DATA" ]; then
  run_step qlora_train "${LIMITS[3]}" "$OUT/gpu_check_${SLUG}_qlora_train.log" \
    "$PYTHON" -m lima train configs/train/lima_qlora.yaml "model=$MODEL" epochs=1 batch_size=4 \
    gradient_accumulation_steps=1 "max_length=$LENGTH" output.tensorboard=false --data "$DATA" --out "$WORK/qlora-run"
else
  STATUS+=("qlora_train skipped 0"); summarize
  echo "== qlora_train: skipped (the bench built no model or data)"
fi
summarize
cat "$OUT/gpu_check_${SLUG}.json"
exit "$SUMMARY_RC"
