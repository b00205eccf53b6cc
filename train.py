"""Fine-tune a transformer to read the emotion in English text: `emotion train`, kept where the seed's layout names it.

    $ python train.py --base-model minilm --data ../shared/data/emotion --output-dir models/my-model
    $ python train.py --help
"""

import sys

from emotion_core.cli import main as cli

if __name__ == "__main__":
    sys.exit(cli(["train", *sys.argv[1:]]))
