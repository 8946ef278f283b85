# sfpair from the release's static musl binaries (scripts/package: sfpair-<version>-<target>.tar.gz),
# the way meta-tailscale ships Tailscale: no Rust toolchain in the build, so any Yocto release
# takes it. aarch64 machines get the aarch64 build; 32-bit ARM machines the ARMv6 one, which
# also runs on ARMv7 (docs/boards.md). The unit, the user and /etc/default/sfpair are the .deb's
# (packaging/debian/), which every release tarball carries in its packaging/ directory.
#
# Not built here: this machine has no bitbake and no Yocto sources (README.md beside this file).
SUMMARY = "Pair a headless device with Salesforce (prebuilt static binary)"
LICENSE = "MIT | Apache-2.0"
LIC_FILES_CHKSUM = "file://${S}/COPYRIGHT;md5=${SFPAIR_COPYRIGHT_MD5}"

# Where the release files are (scripts/package's dist/ as published), and their sha256sums
# from that release's SHA256SUMS: set in your layer or local.conf.
SFPAIR_RELEASE_URI ??= ""
SFPAIR_COPYRIGHT_MD5 ??= ""
SFPAIR_TARGET:aarch64 = "aarch64-unknown-linux-musl"
SFPAIR_TARGET:arm = "arm-unknown-linux-musleabihf"
COMPATIBLE_HOST = "(aarch64|arm).*-linux"

SRC_URI = "${SFPAIR_RELEASE_URI}/sfpair-${PV}-${SFPAIR_TARGET}.tar.gz;name=${SFPAIR_TARGET}"
S = "${WORKDIR}/sfpair-${PV}-${SFPAIR_TARGET}"

python () {
    if not d.getVar("SFPAIR_RELEASE_URI"):
        raise bb.parse.SkipRecipe("set SFPAIR_RELEASE_URI and the sha256sums (packaging/yocto/README.md)")
}

inherit systemd useradd

# Static and stripped already: nothing for the build to do.
INSANE_SKIP:${PN} += "already-stripped"
do_compile[noexec] = "1"

SYSTEMD_SERVICE:${PN} = "sfpair.service"
USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --user-group --home-dir /var/lib/sfpair --no-create-home \
    --shell /sbin/nologin sfpair"

do_install() {
    install -D -m 0755 ${S}/sfpair ${D}${bindir}/sfpair
    install -D -m 0644 ${S}/packaging/sfpair.service ${D}${systemd_system_unitdir}/sfpair.service
    install -D -m 0644 ${S}/packaging/default ${D}${sysconfdir}/default/sfpair
    install -d -m 0700 -o sfpair -g sfpair ${D}${localstatedir}/lib/sfpair
}

FILES:${PN} += "${systemd_system_unitdir}/sfpair.service ${localstatedir}/lib/sfpair"
CONFFILES:${PN} = "${sysconfdir}/default/sfpair"
RPROVIDES:${PN} = "sfpair"
RCONFLICTS:${PN} = "sfpair"
