import sys

from attnc.cli import main

sys.exit(main())
