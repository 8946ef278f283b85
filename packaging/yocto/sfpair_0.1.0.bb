# sfpair built from source with OE-core's cargo class: the agent, its hardened unit (enabled),
# the system user sfpair and /etc/default/sfpair. It is the same unit and the same settings
# file as the .deb's (packaging/debian/), so the two cannot drift apart.
#
# Rust: sfpair needs rustc 1.89 or newer (Cargo.toml, rust-version). OE-core's own Rust is
# older in the releases we know of (about 1.75 in Scarthgap, 1.84 in Walnascar: unconfirmed);
# use a layer or a branch whose rust recipe is 1.89 or newer, or sfpair-bin_0.1.0.bb, which
# installs the release's static musl binary instead. Not built here: this machine has no
# bitbake and no Yocto sources (README.md beside this file).
SUMMARY = "Pair a headless device with Salesforce through the OAuth 2.0 device flow"
LICENSE = "MIT | Apache-2.0"
# No license files in the repository yet: the license is the line `license = "MIT OR Apache-2.0"`
# of Cargo.toml (line 7; move these numbers and the md5 if that line moves).
LIC_FILES_CHKSUM = "file://Cargo.toml;beginline=7;endline=7;md5=86b31c7756a1a7962f28b62856ed4f05"

# Where the sources come from: set these in your layer or local.conf, e.g. a git URL of your
# sfpair mirror and the commit of the release (this repository names no public host).
SFPAIR_GIT_URI ??= ""
SRCREV ??= ""
SRC_URI = "${SFPAIR_GIT_URI};branch=main"
S = "${WORKDIR}/git"
require sfpair-crates.inc

python () {
    if not d.getVar("SFPAIR_GIT_URI") or not d.getVar("SRCREV"):
        raise bb.parse.SkipRecipe("set SFPAIR_GIT_URI and SRCREV (packaging/yocto/README.md)")
}

inherit cargo systemd useradd

# The agent only: the workspace also holds the simulator, which is for tests.
CARGO_BUILD_FLAGS:append = " -p sfpair --bin sfpair"

SYSTEMD_SERVICE:${PN} = "sfpair.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --user-group --home-dir /var/lib/sfpair --no-create-home \
    --shell /sbin/nologin sfpair"

do_install:append() {
    install -d ${D}${systemd_system_unitdir} ${D}${sysconfdir}/default
    install -m 0644 ${S}/packaging/debian/sfpair.service ${D}${systemd_system_unitdir}/
    install -m 0644 ${S}/packaging/debian/default ${D}${sysconfdir}/default/sfpair
    install -d -m 0700 -o sfpair -g sfpair ${D}${localstatedir}/lib/sfpair
}

FILES:${PN} += "${systemd_system_unitdir}/sfpair.service ${localstatedir}/lib/sfpair"
CONFFILES:${PN} = "${sysconfdir}/default/sfpair"
