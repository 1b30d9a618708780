DIST ?= dist
BUILD ?= build/pyz
PYTHON ?= .venv/bin/python

# The code, templates/ and static/ go into the zip's site-packages side by side, as in the checkout, so
# rooms/web/app.py finds templates/ and static/ next to rooms/ once shiv has extracted it.
.PHONY: pyz clean
pyz:
	rm -rf $(BUILD) && mkdir -p $(BUILD) $(DIST)
	cp -R server.py rooms backends templates static $(BUILD)/
	find $(BUILD) -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON) -m shiv --site-packages $(BUILD) -r requirements.txt -e server:main -o $(DIST)/rooms.pyz

clean:
	rm -rf $(BUILD) $(DIST)
