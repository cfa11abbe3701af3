#!/usr/bin/env bash
# Prints the install prefix of an FFmpeg 7.x that roomcast can build against,
# building FFmpeg 7.1 from Debian trixie's source package when the system has
# no FFmpeg 7 (Debian 12 ships 5.1). The build lives in a cache outside the
# checkout, keyed by upstream version and a hash of the configure flags, so a
# fresh clone reuses it and a fresh machine rebuilds it.
#
#   scripts/ffmpeg.sh prefix   -> prints the prefix ("system" when pkg-config has 7.x)
#   scripts/ffmpeg.sh deps     -> installs the Debian build dependencies (root)
#
# Only apt-get is used to fetch anything; the system's apt configuration is
# never touched: the trixie source list lives in the cache directory.
set -euo pipefail

CACHE=${ROOMCAST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomcast}
SUITE=trixie
MIRROR=${ROOMCAST_DEBIAN_MIRROR:-http://deb.debian.org/debian}

BUILD_DEPS=(build-essential pkg-config nasm dpkg-dev xz-utils libx264-dev libvpx-dev libopus-dev
  libdav1d-dev libfreetype-dev libharfbuzz-dev libfontconfig-dev libgnutls28-dev
  zlib1g-dev fonts-dejavu-core)

# The components roomcast needs and nothing else (keeps the build to minutes).
FLAGS=(
  --disable-everything --disable-doc --disable-debug --disable-static --enable-shared
  --disable-autodetect --enable-pthreads --enable-zlib
  --enable-gpl --enable-version3
  --enable-libx264 --enable-libvpx --enable-libopus --enable-libdav1d
  --enable-libfreetype --enable-libharfbuzz --enable-libfontconfig --enable-gnutls
  --enable-decoder=h264,hevc,vp8,vp9,libdav1d,opus,aac,mp3,png,mjpeg,rawvideo,wrapped_avframe,pcm_s16le,pcm_f32le,pcm_s16be,flac,vorbis
  --enable-encoder=libx264,libvpx_vp8,libvpx_vp9,aac,libopus,png,rawvideo,wrapped_avframe,pcm_s16le,pcm_f32le
  --enable-muxer=mp4,mov,ipod,flv,matroska,webm,hls,segment,null,rawvideo,wav,image2,image2pipe,pcm_s16le,pcm_f32le,ivf,ogg,opus,adts,h264,yuv4mpegpipe,framemd5,md5
  --enable-demuxer=mov,matroska,flv,live_flv,hls,ogg,wav,image2,png_pipe,rawvideo,h264,ivf,aac,mp3,concat,yuv4mpegpipe,pcm_s16le,pcm_f32le,lavfi
  --enable-parser=h264,hevc,vp8,vp9,av1,opus,aac,png,mjpeg,mpegaudio,flac,vorbis
  --enable-bsf=h264_mp4toannexb,extract_extradata,aac_adtstoasc,vp9_superframe,vp9_superframe_split,dump_extradata,h264_metadata,null,setts
  --enable-protocol=file,pipe,tcp,tls,rtmp,rtmps,http,https,crypto,data,hls,udp
  --enable-indev=lavfi
  --enable-filter=buffer,buffersink,abuffer,abuffersink,scale,overlay,pad,crop,drawtext,drawbox,color,testsrc,testsrc2,smptebars,sine,anullsrc,aevalsrc,aresample,aformat,format,fps,amix,xstack,hstack,vstack,null,anull,nullsink,anullsink,setpts,asetpts,trim,atrim,concat,volume,showinfo,ashowinfo,split,asplit,adelay,apad,tpad,settb,asettb,pan,amerge,astats,volumedetect,silencedetect,signalstats,loop,aloop,fifo,afifo,select,aselect,crop,hflip,geq,lutrgb,setsar,setdar,alimiter,dynaudnorm,compand,framerate
)

system_ok() {
  command -v pkg-config >/dev/null || return 1
  local v
  v=$(pkg-config --modversion libavcodec 2>/dev/null) || return 1
  # libavcodec 61.x is FFmpeg 7.0/7.1.
  [[ ${v%%.*} == 61 ]] && command -v ffprobe >/dev/null && command -v ffmpeg >/dev/null
}

key() {
  printf '%s\n' "$SUITE" "${FLAGS[@]}" | sha256sum | cut -c1-12
}

deps() {
  local missing=()
  for p in "${BUILD_DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "installing build dependencies: ${missing[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
  fi
}

fetch_source() {
  local dir=$1 apt=$CACHE/apt-$SUITE
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$dir"
  echo "deb-src $MIRROR $SUITE main" >"$apt/sources.list"
  local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt" -o Debug::NoLocking=1)
  apt-get "${opts[@]}" update -q >&2
  (cd "$dir" && apt-get "${opts[@]}" source -q ffmpeg >&2)
}

build() {
  local k prefix src
  k=$(key)
  mkdir -p "$CACHE"
  # One build at a time (parallel make runs, several checkouts).
  exec 9>"$CACHE/.ffmpeg-$k.lock"
  flock 9
  # The version is part of the key once known; the marker records it.
  for prefix in "$CACHE"/ffmpeg-7.1*-"$k"; do
    if [[ -f $prefix/.complete ]]; then echo "$prefix"; return; fi
  done
  deps
  src=$CACHE/src-$k
  rm -rf "$src"
  fetch_source "$src"
  local tree
  tree=$(find "$src" -maxdepth 1 -mindepth 1 -type d -name 'ffmpeg-*' | head -1)
  [[ -n $tree ]] || { echo "ffmpeg source not found in $src" >&2; exit 1; }
  local ver=${tree##*/ffmpeg-}
  [[ $ver == 7.1* ]] || { echo "trixie ships ffmpeg $ver, expected 7.1.x" >&2; exit 1; }
  prefix=$CACHE/ffmpeg-$ver-$k
  rm -rf "$prefix"
  echo "building FFmpeg $ver into $prefix (takes a few minutes)" >&2
  (cd "$tree" && ./configure --prefix="$prefix" --extra-ldflags="-Wl,-rpath,$prefix/lib" "${FLAGS[@]}" >&2 &&
    make -j"$(nproc)" >&2 && make install >&2)
  touch "$prefix/.complete"
  rm -rf "$src"
  echo "$prefix"
}

case ${1:-prefix} in
  prefix) if system_ok; then echo system; else build; fi ;;
  deps) deps ;;
  key) key ;;
  *) echo "usage: $0 [prefix|deps|key]" >&2; exit 2 ;;
esac
