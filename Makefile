DIST ?= dist
BUILD ?= build/pyz
PYTHON ?= python3
# What pip install . reads: the code, the pages and the project's metadata.
SOURCES = server.py rooms backends templates static pyproject.toml requirements.txt README.md

# The one-file app is built in a venv of its own that holds only the build tools (requirements-build.txt),
# never the dev requirements. shiv installs rooms into the zip as `pip install .` does: its pinned runtime
# requirements, templates/ and static/ inside the rooms package, and its metadata (rooms --version). It
# builds from a copy of the sources, so nothing is written into the checkout.
.PHONY: pyz clean
pyz:
	rm -rf $(BUILD) && mkdir -p $(BUILD)/src $(DIST)
	$(PYTHON) -m venv $(BUILD)/venv
	$(BUILD)/venv/bin/python -m pip install --quiet -r requirements-build.txt
	cp -R $(SOURCES) $(BUILD)/src/
	find $(BUILD)/src -name __pycache__ -prune -exec rm -rf {} +
	$(BUILD)/venv/bin/shiv --compressed -e server:main -o $(DIST)/rooms.pyz $(BUILD)/src

clean:
	rm -rf $(BUILD) $(DIST)
