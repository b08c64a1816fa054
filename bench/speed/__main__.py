"""``python -m bench.speed --point <json>``: one ``--isolate`` point in a fresh process (internal)."""

import sys

from bench.speed.sweep import point_main

if len(sys.argv) == 3 and sys.argv[1] == "--point":
    sys.exit(point_main(sys.argv[2]))
sys.exit("usage: python -m bench.speed --point <json>  (internal: one --isolate point)")
