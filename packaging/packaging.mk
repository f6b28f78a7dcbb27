# Packages: `make deb`, `make rpm`, `make package-check` (t/packaging/check.sh), and
# `make package-deps` (the tools these need). Included by the Makefile.
#
# Both packages are built from a copy of the source tree in $(BUILD), never from the tree
# itself: by default the files git knows about in the working tree (tracked, and untracked
# but not ignored; so no build/ output), or with PKG_TREE=head exactly the commit HEAD
# (`git archive`). The version comes from include/pgrouter/base/version.h and nowhere else.

PKG_VERSION  := $(shell sed -nE 's/^inline constexpr std::string_view kVersion = "([^"]+)";.*/\1/p' include/pgrouter/base/version.h 2>/dev/null)
PKG_DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
PKG_DEB_SRC  := $(BUILD)/deb-src
PKG_DEB      := $(BUILD)/pgrouter_$(PKG_VERSION)_$(PKG_DEB_ARCH).deb
PKG_RPM_TOP  := $(abspath $(BUILD))/rpm
PKG_JOBS     ?= $(shell nproc 2>/dev/null || echo 1)
PKG_TREE     ?= worktree
# The outer make's flags and variables (command-line ones are exported) must not leak into
# the package builds' own make runs, which set their own paths and compiler flags.
PKG_CLEAN_ENV := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
    -u BUILD -u PREFIX -u DESTDIR -u SBINDIR -u MANDIR -u LIBEXECDIR -u SYSCONFDIR -u OPT \
    -u CPPFLAGS -u CXXFLAGS -u LDFLAGS -u LDLIBS

ifeq ($(PKG_TREE),head)
pkg_tree_tar = git archive --format=tar HEAD
else
pkg_tree_tar = git ls-files -z --cached --others --exclude-standard \
    | tar --null --ignore-failed-read --no-recursion -T - -cf -
endif

# $(call pkg_copy_tree,DIR): a fresh copy of the source tree in DIR.
define pkg_copy_tree
	@test -n "$(PKG_VERSION)" || { echo "packaging: no kVersion in include/pgrouter/base/version.h" >&2; exit 1; }
	@git rev-parse --git-dir >/dev/null 2>&1 || { echo "packaging: needs a git checkout" >&2; exit 1; }
	rm -rf $(1) && mkdir -p $(1)
	$(pkg_tree_tar) | tar -xf - -C $(1)
endef

.PHONY: deb rpm package-check package-deps

# packaging/debian becomes debian/ in the copy; if its changelog does not carry the
# version of version.h yet, an entry for it is added to the copy.
deb:
	$(call pkg_copy_tree,$(PKG_DEB_SRC))
	rm -rf $(PKG_DEB_SRC)/debian && cp -r packaging/debian $(PKG_DEB_SRC)/debian
	cd $(PKG_DEB_SRC) && if [ "$$(dpkg-parsechangelog -S Version)" != "$(PKG_VERSION)" ]; then \
	    { printf 'pgrouter (%s) unstable; urgency=medium\n\n  * Version %s.\n\n -- %s  %s\n\n' \
	        "$(PKG_VERSION)" "$(PKG_VERSION)" "$$(dpkg-parsechangelog -S Maintainer)" "$$(date -R)"; \
	      cat debian/changelog; } > debian/changelog.new && mv debian/changelog.new debian/changelog; \
	fi
	rm -f $(BUILD)/pgrouter_* $(BUILD)/pgrouter-dbgsym_*
	cd $(PKG_DEB_SRC) && $(PKG_CLEAN_ENV) DEB_BUILD_OPTIONS="$(strip $(DEB_BUILD_OPTIONS) parallel=$(PKG_JOBS))" \
	    dpkg-buildpackage -us -uc -b
	lintian --fail-on error --tag-display-limit 0 $(PKG_DEB)
	@echo "deb: $(PKG_DEB)"

# --nodeps: the build host is Debian, whose packages rpmbuild cannot see; the
# BuildRequires are Fedora's names.
rpm:
	$(call pkg_copy_tree,$(PKG_RPM_TOP)/src/pgrouter-$(PKG_VERSION))
	mkdir -p $(PKG_RPM_TOP)/SOURCES
	tar -C $(PKG_RPM_TOP)/src -czf $(PKG_RPM_TOP)/SOURCES/pgrouter-$(PKG_VERSION).tar.gz pgrouter-$(PKG_VERSION)
	rm -f $(BUILD)/pgrouter-*.rpm
	$(PKG_CLEAN_ENV) rpmbuild -bb --nodeps \
	    --define "_topdir $(PKG_RPM_TOP)" \
	    --define "pgr_version $(PKG_VERSION)" \
	    --define "_smp_mflags -j$(PKG_JOBS)" \
	    $(PKG_RPM_TOP)/src/pgrouter-$(PKG_VERSION)/packaging/rpm/pgrouter.spec
	cp $(PKG_RPM_TOP)/RPMS/*/pgrouter-$(PKG_VERSION)-*.rpm $(BUILD)/
	@ls $(BUILD)/pgrouter-$(PKG_VERSION)-*.rpm | sed 's/^/rpm: /'

# Builds and lints both packages, installs the .deb into this machine (root or sudo),
# checks and smoke-tests it, and purges it again.
package-check:
	BUILD=$(BUILD) MAKE="$(MAKE)" t/packaging/check.sh

PKG_TOOLS := debhelper lintian rpm mandoc devscripts fakeroot
package-deps:
	@missing=""; \
	for p in $(PKG_TOOLS) $$(command -v systemd-analyze >/dev/null || echo systemd); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "package-deps: everything is installed"; exit 0; fi; \
	sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing
