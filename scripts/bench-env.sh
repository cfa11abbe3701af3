# Shared preamble of the bench scripts (sourced, not run): the repository
# root as the working directory, the cache, and the FFmpeg the build and the
# tests use (the Makefile does this too; repeated so a script also runs on
# its own). Sets GO, ROOMCAST_CACHE, BIN (bin/roomcast, built if missing).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
export ROOMCAST_CACHE=${ROOMCAST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomcast}
FF=$(scripts/ffmpeg.sh prefix)
if [[ $FF != system ]]; then
  export PKG_CONFIG_PATH="$FF/lib/pkgconfig" PATH="$FF/bin:$PATH" CGO_LDFLAGS="-Wl,-rpath,$FF/lib"
fi
BIN=$PWD/bin/roomcast
[[ -x $BIN ]] || $GO build -o "$BIN" ./cmd/roomcast
