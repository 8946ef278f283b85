################################################################################
#
# sfpair
#
# Buildroot's cargo-package: vendors the crates of Cargo.lock at download time, builds the
# agent (the workspace's root package; the simulator is not built), and installs it with the
# system user sfpair, the BusyBox init script (boards/generic-aarch64-musl.init as S90sfpair) or
# the hardened systemd unit (packaging/debian/sfpair.service), and /etc/default/sfpair.
# Needs host-rust 1.89 or newer (Cargo.toml rust-version). Not built here: no Buildroot tree on
# this machine (packaging/README.md).
#
################################################################################

SFPAIR_VERSION = $(call qstrip,$(BR2_PACKAGE_SFPAIR_VERSION))
SFPAIR_SITE = $(call qstrip,$(BR2_PACKAGE_SFPAIR_SITE))
SFPAIR_SITE_METHOD = git
SFPAIR_LICENSE = MIT or Apache-2.0
SFPAIR_LICENSE_FILES = Cargo.toml

# The agent only, as scripts/cross-build builds it for the boards.
SFPAIR_CARGO_BUILD_OPTS = -p sfpair --bin sfpair

# user uid group gid password home shell groups comment
define SFPAIR_USERS
	sfpair -1 sfpair -1 * /var/lib/sfpair - - sfpair agent
endef

define SFPAIR_INSTALL_DEFAULT
	$(INSTALL) -D -m 0644 $(@D)/packaging/debian/default $(TARGET_DIR)/etc/default/sfpair
endef
SFPAIR_POST_INSTALL_TARGET_HOOKS += SFPAIR_INSTALL_DEFAULT

# BusyBox init: the script runs sfpair as root (firmware images rarely have users to spare);
# its `stop` ends the agent before a restart starts another.
define SFPAIR_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/boards/generic-aarch64-musl.init \
		$(TARGET_DIR)/etc/init.d/S90sfpair
endef

define SFPAIR_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/packaging/debian/sfpair.service \
		$(TARGET_DIR)/usr/lib/systemd/system/sfpair.service
endef

$(eval $(cargo-package))
