# streamrec: the README's two commands are `make demo` and `make test`.
# VENV may point at a shared environment (CI reuses one); TORCH_PINS are the builds that
# install from this machine's disk; on other hardware set e.g. TORCH_PINS="torch torchvision".
VENV ?= .venv
PYTHON ?= python3
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
TRITON_VENV ?= .venv-triton
PY := $(VENV)/bin/python
STAMP := $(VENV)/.streamrec-installed

.PHONY: install demo test system-deps triton-server install-service clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[test]' $(TORCH_PINS)
	@touch $@

demo: install
	$(VENV)/bin/streamrec demo --duration 40

system-deps:
	@scripts/install-system-deps

# The remote-model tests run a real Triton server from its own environment (scripts/install-triton-server).
triton-server:
	@scripts/install-triton-server $(TRITON_VENV)

test: install system-deps triton-server
	STREAMREC_TRITON_VENV=$(abspath $(TRITON_VENV)) $(PY) -m pytest

# As root on a kiosk: user streamrec, /opt/streamrec venv, unit, /etc/streamrec, /var/lib/streamrec.
# DESTDIR=DIR lays the files down under DIR instead (image builds); WEIGHTS=FILE copies the model weights.
install-service:
	scripts/install-kiosk $(if $(DESTDIR),--root $(DESTDIR)) $(if $(WEIGHTS),--weights $(WEIGHTS))

clean:
	rm -rf $(VENV) $(TRITON_VENV) .pytest_cache build *.egg-info
