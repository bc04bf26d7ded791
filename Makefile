# One entry point for set-up, tests, the demo and benchmarks.
# Everything a fresh machine needs is installed from here.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BUILD := .build
COLLECTION_ROOT := $(BUILD)/collections/ansible_collections/vmcrypt
# ansible-test lists files with git and skips hidden folders: the copy is
# not under .build and is a git repository of its own.
SANITY_ROOT := build/sanity/ansible_collections/vmcrypt/backup
PIP_BOOTSTRAP_CACHE := $(HOME)/.ansible/test/cache
VCSIM_BIN := tests/vcsim/bin/vcsim-launcher

.PHONY: setup venv vcsim vddk-double collection browser test unit integration sanity demo bench-vm-facts bench-repository clean

setup: venv vcsim vddk-double collection

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

vcsim: $(VCSIM_BIN)

$(VCSIM_BIN): $(wildcard tests/vcsim/*.go) tests/vcsim/go.mod
	cd tests/vcsim && go build -o bin/vcsim-launcher .

# A C stand-in for libvixDiskLib (VDDK's ABI, serving vcsim's datastore files),
# and the library it loads by bare name as VDDK does (found through LD_LIBRARY_PATH
# only: neither gets a RUNPATH).
VDDK_DOUBLE := tests/vddk_double/build/lib64/libvixDiskLib.so.8
VDDK_DOUBLE_VIM := tests/vddk_double/build/lib64/libvixDiskLibVim.so.8
vddk-double: $(VDDK_DOUBLE) $(VDDK_DOUBLE_VIM)

$(VDDK_DOUBLE): tests/vddk_double/vddk_double.c tests/vddk_double/vddk_abi.h
	mkdir -p $(@D)
	gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC -fvisibility=hidden -shared \
	    -Wl,-soname,libvixDiskLib.so.8 -o $@ $< -lpthread -ldl

$(VDDK_DOUBLE_VIM): tests/vddk_double/vddk_double_vim.c
	mkdir -p $(@D)
	gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC -fvisibility=hidden -shared \
	    -Wl,-soname,libvixDiskLibVim.so.8 -o $@ $<

# Debian's chromium, headless, for the run report's browser test (tests/integration/test_report_browser.py);
# installed only when missing (as root, or through sudo).
CHROMIUM := /usr/bin/chromium
browser: $(CHROMIUM)

$(CHROMIUM):
	$$([ "$$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive sh -c \
	  'apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }'

# ansible-playbook and the unit tests find the collection through this link.
collection:
	mkdir -p $(COLLECTION_ROOT)
	ln -sfn $(CURDIR) $(COLLECTION_ROOT)/backup

test: setup browser
	cd tests/vcsim && go test .
	$(PY) -m pytest tests/unit tests/integration
	$(MAKE) sanity

unit: venv collection
	$(PY) -m pytest tests/unit

integration: setup browser
	$(PY) -m pytest tests/integration

# ansible-test wants the collection under ansible_collections/NS/NAME;
# it gets a copy of the tracked and new files, never the venv or build output.
sanity: venv
	mkdir -p $(PIP_BOOTSTRAP_CACHE)
	for version in $$($(PY) -c "import re,ansible_test,os;p=os.path.join(os.path.dirname(ansible_test.__file__),'_internal','python_requirements.py');print(' '.join(set(re.findall(r\"pip='([0-9.]+)'\",open(p).read()))))"); do \
	  cp tests/sanity/pip_bootstrap.py $(PIP_BOOTSTRAP_CACHE)/get_pip_$${version//./_}.py; done
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_ROOT)
	git ls-files --cached --others --exclude-standard -z | xargs -0 cp --parents -t $(SANITY_ROOT)
	cd $(SANITY_ROOT) && git init -q && git add -A
	cd $(SANITY_ROOT) && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ansible-test sanity --python 3.11 --color no

demo: setup
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) tests/demo.py

# Encryption facts of 1,000 simulated VMs, beside community.vmware's vmware_guest_info.
bench-vm-facts: setup
	$(PY) -m pip install --quiet -r bench/requirements-vsphere-peers.txt
	$(PY) bench/vm_facts_bench.py --vms $${BENCH_VMS:-1000}

# What the benchmarks run beside our code (bench/requirements-debian.txt: restic, zstd, openssl,
# e2fsprogs), installed with apt-get when one of the tools is missing (as root, or through sudo).
.PHONY: bench-setup
bench-setup:
	@for tool in restic zstd openssl mkfs.ext4; do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  $$([ "$$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive sh -c \
	    "apt-get update && apt-get install -y --no-install-recommends $$(grep -v '^#' bench/requirements-debian.txt | xargs)"; \
	fi

# Repository throughput and memory, side by side with restic.
bench-repository: venv collection bench-setup
	$(PY) bench/repository_bench.py --size-gib $${BENCH_SIZE_GIB:-3}

# disk_export / disk_import through the VDDK test double, beside restic and the compress+encrypt floor,
# on a real file system (mkfs.ext4 -d of BENCH_FS_TREE, cached in .build/bench-images) and the synthetic mix.
.PHONY: bench-disk-transfer
bench-disk-transfer: setup bench-setup
	$(PY) bench/disk_transfer_bench.py --size-gib $${BENCH_SIZE_GIB:-8} --sparse-gib $${BENCH_SPARSE_GIB:-64} \
	  --images $${BENCH_IMAGES:-fs,synthetic} --fs-tree $${BENCH_FS_TREE:-/usr} --repeat $${BENCH_REPEAT:-3}

clean:
	rm -rf $(BUILD) build tests/vcsim/bin
