#!/usr/bin/env bash
# Smoke test of an installed gaitedge (from the built wheel), run in an empty folder outside
# the clone with that installation's `gaitedge` first on PATH:
# train -> export c -> firmware build -> device emulate -> device info -> flash.
set -euo pipefail

say() { printf '\n== %s\n' "$*"; }
case "$(python -c 'import gaitedge, os; print(os.path.dirname(gaitedge.__file__))')" in
  */site-packages/*) ;;
  *) echo "wheel smoke: gaitedge is not imported from an installation" >&2; exit 1 ;;
esac

say "gaitedge train"
gaitedge train --data 'synthetic?n=3&trials=1' --epochs 1 --set train.steps_per_epoch=3 \
  --set model.hidden=8 --out runs/smoke --no-progress

say "gaitedge export c"
gaitedge export c runs/smoke --out lib
for f in model_data.h model_data.c gaitedge_rt.h ge_model.c; do
  [ -n "$(find lib -name "$f" -print -quit)" ] || { echo "wheel smoke: export c wrote no $f" >&2; exit 1; }
done
if [ -f lib/CMakeLists.txt ] && command -v cmake >/dev/null 2>&1; then
  say "cmake: the exported library for the host"
  cmake -S lib -B lib-build-host -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build lib-build-host -j 2 >/dev/null
  ./lib-build-host/*_example
  if command -v arm-none-eabi-gcc >/dev/null 2>&1 && [ -f lib/cmake/arm-none-eabi.cmake ]; then
    say "cmake: the exported library for Cortex-M4"
    cmake -S lib -B lib-build-m4 -DCMAKE_TOOLCHAIN_FILE="$PWD/lib/cmake/arm-none-eabi.cmake" \
      -DGAITEDGE_CPU=cortex-m4 -DGAITEDGE_DSP=ON >/dev/null
    cmake --build lib-build-m4 -j 2 >/dev/null
  fi
fi

say "gaitedge firmware build --board host"
gaitedge firmware build runs/smoke --board host
image=runs/smoke/firmware-host/gaitedge-fw-host
if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
  say "gaitedge firmware build (mps2-an386)"
  gaitedge firmware build runs/smoke
  command -v qemu-system-arm >/dev/null 2>&1 && image=runs/smoke/firmware/firmware.elf
fi

say "gaitedge device emulate $image"
gaitedge device emulate "$image" > emulate.log 2>&1 &
emu=$!
trap 'kill "$emu" 2>/dev/null || true' EXIT
url=
for _ in $(seq 100); do
  url=$(sed -n 's/^serial port (pyserial URL): //p' emulate.log)
  [ -n "$url" ] && break
  kill -0 "$emu" 2>/dev/null || break
  sleep 0.2
done
[ -n "$url" ] || { echo "wheel smoke: the emulator did not start" >&2; cat emulate.log >&2; exit 1; }
cat emulate.log

say "gaitedge device info"
gaitedge device info "$url"
say "gaitedge flash"
gaitedge flash runs/smoke --port "$url"
gaitedge device info "$url" | grep -q "generation 1" || { echo "wheel smoke: no slot after flash" >&2; exit 1; }

kill -INT "$emu"
wait "$emu" || true
trap - EXIT
say "wheel smoke test passed"
