"""``python -m bench.speed --point|--model <json>``: one point, or one model's sweep, in a fresh process
(internal: ``--isolate`` and the per-model processes of CPU sweeps)."""

import sys

from bench.speed.sweep import model_main, point_main

if len(sys.argv) == 3 and sys.argv[1] == "--point":
    sys.exit(point_main(sys.argv[2]))
if len(sys.argv) == 3 and sys.argv[1] == "--model":
    sys.exit(model_main(sys.argv[2]))
sys.exit("usage: python -m bench.speed --point|--model <json>  (internal: a point or a model in a fresh process)")
