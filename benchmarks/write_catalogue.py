"""Rewrite docs/catalogue.md: the outcome of every hostile-input case against each target.

    $ python -m benchmarks.write_catalogue

Runs tests/test_hostile.py with EMOTION_WRITE_CATALOGUE=1, which records every outcome and writes
the catalogue when the module ends; a normal test run only checks the outcomes against it.
"""

import os
import subprocess
import sys

from tests.helpers import ROOT

if __name__ == "__main__":
    env = os.environ | {"EMOTION_WRITE_CATALOGUE": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    sys.exit(subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_hostile.py"],
                            cwd=ROOT, env=env).returncode)
