# shellcheck shell=bash disable=SC2034 # sourced: its variables are for the scripts that source it
# The ARM targets sfpair ships, how each one is built and checked, and how each one runs under
# qemu-user. Sourced (after need.sh) by scripts/cross-build, check-size, check-abi, test-arm and
# bench-arm, so the list lives in one place; src/board.rs's tests check that every board
# profile names a target listed here.

# Every supported target, in build order.
ARM_TARGETS="armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu aarch64-unknown-linux-musl arm-unknown-linux-musleabihf"

# The oldest glibc the gnu binaries must start on: Raspberry Pi OS Buster / Debian 10.
GLIBC_FLOOR=2.28

# Size flags for the shipped binaries (nightly; measured on armv7, stripped, 2026-11-23):
#   -C force-unwind-tables=no  -25,088 bytes: panic = "abort" never unwinds, so the
#                              .ARM.exidx/.eh_frame tables only served release backtraces;
#   -Zlocation-detail=none     -56,448 bytes: panic messages keep their text but lose the
#                              file:line:column strings.
# Together 1,263,068 -> 1,181,532 bytes on armv7. Tests and debug builds keep both.
#   -Zfmt-debug=shallow        derived Debug impls print the type name only (hand-written ones,
#                              such as http::Version's, which ureq writes into the request line,
#                              are untouched: `none` blanked those and broke every request).
#                              No shipped code of ours formats with Debug (tests/layers.rs).
#   -Cpanic=immediate-abort    a panic aborts at once, without a message: std's panic message
#                              formatting goes. Together with `shallow`, the minimal armv7 build
#                              goes from 1,043,100 to 977,628 bytes (2026-12-01). A panic is a
#                              bug; on a board it now shows as SIGABRT/SIGILL in the journal and
#                              the exit status, with no text (tests and debug builds keep it).
SIZE_RUSTFLAGS="-C force-unwind-tables=no -Zlocation-detail=none -Zfmt-debug=shallow -Zunstable-options -Cpanic=immediate-abort"

# size_rustflags TARGET: SIZE_RUSTFLAGS plus what only that target takes (measured
# with scripts/cross-build, stripped, 2026-12-01; BENCHMARKS.md "Bytes found for the outbox"):
#   armv7: -C target-feature=+thumb-mode   Thumb-2 instead of A32 code, for our code and the
#                              rebuilt std alike: 1,256,524 -> 929,980 bytes (-326,544; the
#                              minimal build 977,628 -> 730,556). Every ARMv7-A core
#                              runs Thumb-2 (the architecture requires it); Debian's and
#                              Ubuntu's own armhf packages are Thumb-2 code (their gcc defaults
#                              to -mthumb); A32 and Thumb code call each other freely under the
#                              EABI (ring's assembly and the C libraries keep their own mode).
#                              Rust's thumbv7neon-unknown-linux-gnueabihf target is Thumb-2
#                              code too. (A stable rustc flag, unlike the ones above.)
#   ARMv6 (arm-unknown-linux-musleabihf) stays A32: an ARM1176 has Thumb-1 only, no Thumb-2.
#   aarch64 has no Thumb.
# Measured and not used: LLVM's machine outliner forced on for ARM
# (-Cllvm-args=-enable-machine-outliner=always, a further -18,496 bytes on armv7): the library's
# unit tests built that way (release, Thumb-2) died with SIGILL on an undefined instruction
# after all of them passed; more outliner rounds on aarch64 (-machine-outliner-reruns=3) save
# only 3,264 bytes, not worth a second rarely-used code generation option.
size_rustflags() {
  case $1 in
    armv7-unknown-linux-gnueabihf) echo "$SIZE_RUSTFLAGS -C target-feature=+thumb-mode" ;;
    *) echo "$SIZE_RUSTFLAGS" ;;
  esac
}

# size_cflags TARGET: what the target's C compiler (zig's clang, for ring's C) takes besides
# its defaults (measured with scripts/cross-build, stripped, 2026-12-07; BENCHMARKS.md
# "Memory and bytes"):
#   armv7: Thumb-2 for ring's C too (-Xclang -target-feature -Xclang +thumb-mode: zig cc
#                              ignores -mthumb and compiles A32): 1,004,964 -> 986,724 bytes
#                              (-18,240; fiat_p256_mul 7,136 -> 4,984). ring's assembly keeps
#                              its `.code 32` (__thumb2__ stays undefined) and A32 and Thumb
#                              call each other under the EABI, as with the Rust code above.
#                              Checked: a known-answer run of ring built this way under
#                              qemu-arm (SHA-1/2, HMAC, AES-GCM, ChaCha20-Poly1305, Ed25519,
#                              RSA PKCS#1 signing) gave the x86_64 outputs byte for byte, each
#                              side verified the other's ECDSA P-256/P-384 and RSA-PSS
#                              signatures, X25519/P-256/P-384 agreement matched; and the qemu
#                              pairing of scripts/test-arm (TLS 1.3, X25519, P-256 certificates).
#                              Android builds BoringSSL, ring's C, as Thumb-2 by default.
#   Other targets: nothing (ARMv6 has no Thumb-2, aarch64 no Thumb).
# The library's unit tests under qemu (need_armv7_tests) are built by Debian's gcc, which takes
# none of this.
size_cflags() {
  case $1 in
    armv7-unknown-linux-gnueabihf) echo "-Xclang -target-feature -Xclang +thumb-mode" ;;
    *) echo "" ;;
  esac
}

# Where scripts/cross-build puts the binaries: $DIST/<target>/sfpair.
DIST=${SFPAIR_DIST:-dist}

# The cargo target directory (cargo's own default unless CARGO_TARGET_DIR says otherwise).
target_dir() { echo "${CARGO_TARGET_DIR:-target}"; }

# The --target value for cargo-zigbuild: gnu targets carry the glibc version to link against.
zig_target() {
  case $1 in
    *-gnu | *-gnueabihf) echo "$1.$GLIBC_FLOOR" ;;
    *) echo "$1" ;;
  esac
}

is_gnu() { case $1 in *-gnu | *-gnueabihf) return 0 ;; *) return 1 ;; esac; }

# The binutils prefix that reads this target's ELF files.
binutils_prefix() {
  case $1 in
    aarch64-*) echo aarch64-linux-gnu ;;
    arm* | thumb*) echo arm-linux-gnueabihf ;;
  esac
}

# The qemu-user command line that runs one of this target's binaries on this machine.
# Dynamic gnu binaries take Debian's cross sysroot (its glibc 2.36 runs binaries built for 2.28);
# the ARMv6 binary runs on an emulated ARM1176, the Pi Zero's CPU, so an ARMv7 instruction
# anywhere on the executed path dies with SIGILL instead of passing unnoticed.
qemu_for() {
  case $1 in
    armv7-unknown-linux-gnueabihf) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    aarch64-unknown-linux-gnu) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    aarch64-unknown-linux-musl) echo "qemu-aarch64" ;;
    arm-unknown-linux-musleabihf) echo "qemu-arm -cpu arm1176" ;;
    *) echo "error: no qemu command for $1" >&2; return 1 ;;
  esac
}

# The board profile the end-to-end run loads for each target (any profile of that target does).
board_for() {
  case $1 in
    armv7-unknown-linux-gnueabihf) echo boards/beaglebone-black.toml ;;
    aarch64-unknown-linux-gnu) echo boards/raspberry-pi-4.toml ;;
    aarch64-unknown-linux-musl) echo boards/generic-aarch64-musl.toml ;;
    arm-unknown-linux-musleabihf) echo boards/raspberry-pi-zero-w.toml ;;
  esac
}

# Installs what building the targets needs: cargo-zigbuild + zig (PyPI), nightly with rust-src
# (build-std), and Debian's binutils for stripping. Fails loudly when something cannot be had.
need_cross_build() {
  need_cargo
  need cargo-zigbuild ziglang nightly rust-src binutils-arm-linux-gnueabihf binutils-aarch64-linux-gnu
}

# Installs what running and inspecting the ARM binaries needs: qemu-user, the cross sysroots the
# dynamic gnu binaries load their glibc from, and binutils (objdump, readelf).
# (aarch64 needs no C headers: no step compiles C for it with Debian's gcc, zig brings its own.)
need_cross_run() {
  need qemu-user binutils-arm-linux-gnueabihf binutils-aarch64-linux-gnu libc6-armhf-cross libc6-arm64-cross
}

# Installs what building and running the library's tests as ARMv7 code needs (cargo with
# .cargo/config.toml's linker and runner): the rustup target, Debian's cross gcc for ring's C
# and the link, the armhf C headers and crt files (which gcc only recommends), libgcc_s for the
# test binary, and qemu-arm with the armhf glibc.
need_armv7_tests() {
  need_cargo
  need armv7-unknown-linux-gnueabihf gcc-arm-linux-gnueabihf libc6-dev-armhf-cross libgcc-s1-armhf-cross \
    qemu-user libc6-armhf-cross
}

# The cargo features of each build: the full one (the default features) and the minimal one
# (Cargo.toml `minimal`: pair, token, status, forget; console, text and JSON; the file store).
MINIMAL_FEATURES="--no-default-features --features minimal"

# build_features BUILD: the cargo feature flags of a build ("" = full, or "minimal").
build_features() {
  case $1 in
    "") echo "" ;;
    minimal) echo "$MINIMAL_FEATURES" ;;
    *) echo "error: unknown build '$1' (full or minimal)" >&2; return 1 ;;
  esac
}

# dist_dir TARGET [BUILD]: where scripts/cross-build puts a build's binary for a target:
# $DIST/<target> for the full build, $DIST/minimal/<target> for the minimal one.
dist_dir() { echo "$DIST/${2:+$2/}$1"; }

# The path of a target's binary in $DIST (BUILD: "" full, or minimal); fails when
# scripts/cross-build has not made it.
dist_binary() {
  local bin
  bin="$(dist_dir "$1" "${2:-}")/sfpair"
  [ -f "$bin" ] || {
    echo "error: $bin is missing: run scripts/cross-build ${2:+--$2 }$1 first" >&2
    return 1
  }
  echo "$bin"
}
