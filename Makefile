DIST ?= dist
BUILD ?= build/pyz
PYTHON ?= python3
# What pip install . reads: the code, the pages and the project's metadata.
SOURCES = server.py rooms backends templates static pyproject.toml requirements.txt README.md

# The single binary: frozen from a virtual environment of its own, holding only `pip install .` (the runtime
# requirements) and packaging/binary-requirements.txt. Build it on the oldest glibc it must run on.
BINARY_PYTHON ?= python3
BINARY_VENV ?= build/binary-venv
BINARY_WORK ?= build/pyinstaller

# The one-file app is built in a venv of its own that holds only the build tools (requirements-build.txt),
# never the dev requirements. shiv installs rooms into the zip as `pip install .` does: its pinned runtime
# requirements, templates/ and static/ inside the rooms package, and its metadata (rooms --version). It
# builds from a copy of the sources, so nothing is written into the checkout.
.PHONY: pyz binary clean
pyz:
	rm -rf $(BUILD) && mkdir -p $(BUILD)/src $(DIST)
	$(PYTHON) -m venv $(BUILD)/venv
	$(BUILD)/venv/bin/python -m pip install --quiet -r requirements-build.txt
	cp -R $(SOURCES) $(BUILD)/src/
	find $(BUILD)/src -name __pycache__ -prune -exec rm -rf {} +
	$(BUILD)/venv/bin/shiv --compressed -e server:main -o $(DIST)/rooms.pyz $(BUILD)/src

binary:
	test -x $(BINARY_VENV)/bin/python || $(BINARY_PYTHON) -m venv $(BINARY_VENV)
	$(BINARY_VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt -r packaging/binary-requirements.txt
	# From a copy of the sources, as for the one-file app: pip's build leaves nothing in the checkout.
	rm -rf build/binary-src && mkdir -p build/binary-src && cp -R $(SOURCES) build/binary-src/
	$(BINARY_VENV)/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall build/binary-src
	$(BINARY_VENV)/bin/pyinstaller --noconfirm --log-level WARN --distpath $(DIST) --workpath $(BINARY_WORK) \
		packaging/rooms.spec

clean:
	rm -rf $(BUILD) $(DIST) $(BINARY_VENV) $(BINARY_WORK) build/binary-src
