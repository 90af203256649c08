#!/usr/bin/env bash
# Build the one-folder desktop app with PyInstaller and smoke-test the built binary.
#   packaging/build_binary.sh [PYTHON]      (default: .venv/bin/python)
# Prints the folder size and the binary's start-up time for `--help` and `dataset info`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
"$PY" -m pip install --quiet pyinstaller==6.22.3 pyinstaller-hooks-contrib==2026.9
"$PY" -m PyInstaller deepscem.spec --noconfirm --log-level WARN
BIN=dist/deepscem/deepscem
[ -x "$BIN" ] || BIN=dist/deepscem/deepscem.exe

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" - "$work" <<'PYEOF'
import sys, numpy as np, tifffile
from deepscem.dataset.synthetic import em_like_volume
image, label = em_like_volume((4, 64, 64), seed=1)
tifffile.imwrite(f"{sys.argv[1]}/img.tif", image)
tifffile.imwrite(f"{sys.argv[1]}/lbl.tif", label * 255)
PYEOF

start=$(date +%s.%N)
"$BIN" --help > /dev/null
help_s=$(echo "$(date +%s.%N) - $start" | bc)
"$BIN" --create-dataset "$work/smoke.hdf5" SMOKE 1 --add-sample "$work/smoke.hdf5" s1 "$work/img.tif" "$work/lbl.tif"
start=$(date +%s.%N)
"$BIN" dataset info "$work/smoke.hdf5" | tee "$work/info.txt"
info_s=$(echo "$(date +%s.%N) - $start" | bc)
grep -q s1 "$work/info.txt"
"$BIN" model create "$work/m.keras" --filters 4 --depth 2
"$BIN" model info "$work/m.keras" > /dev/null
# No arguments opens the GUI: check the window shows (offscreen), then quits.
DEEPSCEM_GUI_QUIT_AFTER_SHOW=1 QT_QPA_PLATFORM=offscreen "$BIN" 2>/dev/null | tee "$work/gui.txt"
grep -q "time-to-window" "$work/gui.txt"
echo "smoke test passed"
echo "size: $(du -sh dist/deepscem | cut -f1)"
echo "start-up: --help ${help_s}s, dataset info ${info_s}s"
