# The two commands of the README's quick start. Both create .venv on first use (nothing else needed).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	# Judges for `restyle mini acceptance` that ship their pretrained weights in their wheels; --no-deps because
	# their metadata pins old numpy/librosa/TensorFlow they do not need (their real needs are in the test extra).
	$(VENV)/bin/pip install --quiet --no-deps aisfx==0.1.2 basic-pitch==0.4.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/restyle demo --out restyle-demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) restyle-demo
