#!/usr/bin/env python3
"""DeepSCEM entry point: no arguments opens the GUI, arguments run the command line."""

import sys

from deepscem.cli import main

if __name__ == "__main__":
    sys.exit(main())
