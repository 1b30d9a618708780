DIST ?= dist
BUILD ?= build/pyz
PYTHON ?= .venv/bin/python
# The single binary: frozen from a virtual environment of its own, holding only `pip install .` (the runtime
# requirements) and requirements-build.txt. Build it on the oldest glibc it must run on.
BINARY_PYTHON ?= python3
BINARY_VENV ?= build/binary-venv
BINARY_WORK ?= build/pyinstaller

# The code, templates/ and static/ go into the zip's site-packages side by side, as in the checkout, so
# rooms/web/app.py finds templates/ and static/ next to rooms/ once shiv has extracted it.
.PHONY: pyz binary clean
pyz:
	rm -rf $(BUILD) && mkdir -p $(BUILD) $(DIST)
	cp -R server.py rooms backends templates static $(BUILD)/
	find $(BUILD) -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON) -m shiv --site-packages $(BUILD) -r requirements.txt -e server:main -o $(DIST)/rooms.pyz

binary:
	test -x $(BINARY_VENV)/bin/python || $(BINARY_PYTHON) -m venv $(BINARY_VENV)
	$(BINARY_VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt -r requirements-build.txt
	rm -rf build/lib  # setuptools' staging in the checkout: a module removed since must not come back from it
	$(BINARY_VENV)/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall .
	$(BINARY_VENV)/bin/pyinstaller --noconfirm --log-level WARN --distpath $(DIST) --workpath $(BINARY_WORK) \
		packaging/rooms.spec

clean:
	rm -rf $(BUILD) $(DIST) $(BINARY_VENV) $(BINARY_WORK)
