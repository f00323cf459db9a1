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
echo "bundle ok: $bundle"
