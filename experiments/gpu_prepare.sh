#!/usr/bin/env bash
# Fill .gpu/ (ignored by git) with what experiments/gpu.sh needs on a device machine that reaches nothing:
# wheels of the packages its image lacks (trl, datasets and theirs), the gold pool, and the default backbone with
# its weights in bfloat16 (45 MB instead of 90: the device's transfer limit is 64 MiB for the whole tree).
#
#   bash experiments/gpu_prepare.sh        # here, once; then the device call, see experiments/gpu.sh
set -euo pipefail
BIN=${BIN:-.venv/bin}
POOL=${POOL:-../shared/data/alpacaeval_gold/responses.jsonl.gz}
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/wheels
# The image has torch, transformers, accelerate, peft, pyarrow, pandas and xxhash (device KINDS.md), not these:
$BIN/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/wheels \
  "trl==$($BIN/python -c 'import trl; print(trl.__version__)')" \
  "datasets==$($BIN/python -c 'import datasets; print(datasets.__version__)')" \
  "dill==$($BIN/python -c 'import dill; print(dill.__version__)')" \
  "multiprocess==$($BIN/python -c 'import multiprocess; print(multiprocess.__version__)')"
cp "$POOL" .gpu/pool.jsonl.gz
$BIN/python - <<'PY'
import shutil
from pathlib import Path
from safetensors.torch import load_file, save_file
from warm.models.loading import resolve_model_path
src = Path(resolve_model_path("packaged:all-MiniLM-L6-v2"))
dst = Path(".gpu/backbone")
shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors", "README.md"))
tensors = load_file(src / "model.safetensors")
save_file({k: v.bfloat16().contiguous() for k, v in tensors.items()}, dst / "model.safetensors", metadata={"format": "pt"})
PY
tree_bytes=$(( $(git ls-files -z | xargs -0 cat | wc -c) + $(git ls-files -z --others --exclude-standard | xargs -0 -r cat | wc -c) ))
gpu_bytes=$(du -sb .gpu | cut -f1)
echo "tree $tree_bytes bytes + .gpu $gpu_bytes bytes = $(( (tree_bytes + gpu_bytes) / 1048576 )) MiB (limit 64 MiB)"
[ $(( tree_bytes + gpu_bytes )) -lt $(( 64 * 1048576 )) ] || { echo "over the device's transfer limit" >&2; exit 1; }
