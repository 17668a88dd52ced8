#!/usr/bin/env bash
# Creates the Python reference environment used by the fixture generators (never by CI or at run time):
# torch (CPU), transformers, tokenizers, trl, peft from the configured pip index.
# Usage: scripts/gen-fixtures/setup-venv.sh [VENV_DIR]   (default ~/.cache/sftkit/pyref)
set -euo pipefail
VENV="${1:-${SFTKIT_PYREF:-$HOME/.cache/sftkit/pyref}}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet "torch==2.13.0+cpu" transformers tokenizers trl peft safetensors numpy jinja2
"$VENV/bin/python" -c "import torch, transformers, tokenizers, trl, peft; print('pyref ready:', torch.__version__, transformers.__version__, tokenizers.__version__, trl.__version__, peft.__version__)"
