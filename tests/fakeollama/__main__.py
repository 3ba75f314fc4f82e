"""``python tests/fakeollama [options]``: serve a fake Ollama until Ctrl-C (see ``--help``)."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a directory: import the package, not its files
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != here]
    sys.path.insert(0, str(Path(here).parent))

from fakeollama.standalone import main

sys.exit(main())
