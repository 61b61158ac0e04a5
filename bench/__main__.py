"""``python -m bench`` runs the ``convlab`` command (useful before ``pip install``)."""
import sys

from .cli import main

sys.exit(main())
