"""A fake SLURM on PATH for the launcher tests: ``sbatch`` records the submitted script and runs it here.

``install(tmp_path)`` writes sbatch, srun, sacct, squeue, scancel and scontrol into ``tmp_path/bin`` and
returns the environment to run commands with. State lives in ``$FAKE_SLURM_DIR``: ``<id>.sbatch`` (the
script as submitted), ``<id>.state`` (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED), ``<id>.attempts``
(one line per start), ``<id>.pids`` (the running tasks). Like SLURM, a job is started again after
``scontrol requeue`` and, when submitted with ``--requeue``, after its processes were killed (SIGKILL: the
node failed); ``srun`` starts ``--ntasks-per-node`` tasks with SLURM_PROCID / SLURM_LOCALID set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

COMMON = r"""
import os, re, signal, subprocess, sys, time
from pathlib import Path
STATE = Path(os.environ["FAKE_SLURM_DIR"])
def opts(text):
    return {k: v.strip("'\"") for k, v in re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", text, re.M)}
def ids(args):
    out = []
    for i, a in enumerate(args):
        if a == "-j" or a == "--jobs":
            out += args[i + 1].split(",")
        elif a.startswith("--jobs="):
            out += a.split("=", 1)[1].split(",")
    return out
def state(jid):
    p = STATE / f"{jid}.state"
    return p.read_text().strip() if p.exists() else None
"""

SBATCH = (
    COMMON
    + r"""
script = Path(sys.argv[-1])
counter = STATE / "counter"
jid = str(int(counter.read_text()) + 1 if counter.exists() else 1001)
counter.write_text(jid)
(STATE / f"{jid}.sbatch").write_text(script.read_text())
(STATE / f"{jid}.state").write_text("PENDING")
subprocess.Popen([sys.executable, str(Path(__file__).with_name("fake_slurm_job")), jid, str(script)],
                 start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
print(f"Submitted batch job {jid}")
"""
)

JOB = (
    COMMON
    + r"""
jid, script = sys.argv[1], sys.argv[2]
o = opts(Path(script).read_text())
env = {**os.environ, "SLURM_JOB_ID": jid, "SLURM_NTASKS": o.get("ntasks-per-node") or "1",
       "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "localhost"}
out = o["output"].replace("%j", jid).replace("%t", "0")
for attempt in range(10):
    (STATE / f"{jid}.state").write_text("RUNNING")
    with open(STATE / f"{jid}.attempts", "a") as f:
        f.write(f"start {attempt}\n")
    with open(out, "a") as log:
        rc = subprocess.call(["bash", script], env=env, stdout=log, stderr=log)
    flag = STATE / f"{jid}.requeue"
    if (STATE / f"{jid}.cancel").exists():
        (STATE / f"{jid}.state").write_text("CANCELLED")
        break
    if flag.exists() or (rc == 137 and "requeue" in o):
        flag.unlink(missing_ok=True)
        (STATE / f"{jid}.state").write_text("REQUEUED")
        time.sleep(0.5)
        continue
    (STATE / f"{jid}.state").write_text("COMPLETED" if rc == 0 else "FAILED")
    break
"""
)

SRUN = (
    COMMON
    + r"""
args, i, files = sys.argv[1:], 0, {}
while i < len(args) and args[i].startswith("--"):
    if args[i] in ("--output", "--error"):
        files[args[i]] = args[i + 1]
        i += 2
    else:
        i += 1
command = args[i:]
jid, n = os.environ["SLURM_JOB_ID"], int(os.environ.get("SLURM_NTASKS", "1"))
tasks = []
for k in range(n):
    env = {**os.environ, "SLURM_PROCID": str(k), "SLURM_LOCALID": str(k)}
    name = lambda key: files[key].replace("%j", jid).replace("%t", str(k))
    tasks.append(subprocess.Popen(command, env=env, stdout=open(name("--output"), "a"),
                                  stderr=open(name("--error"), "a") if "--error" in files else subprocess.STDOUT))
(STATE / f"{jid}.pids").write_text("\n".join(str(t.pid) for t in tasks))
def forward(signum, frame):
    for t in tasks:
        if t.poll() is None:
            t.send_signal(signum)
for s in (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
    signal.signal(s, forward)
codes = [t.wait() for t in tasks]
sys.exit(137 if -9 in codes else max(c if c >= 0 else 128 - c for c in codes))
"""
)

SACCT = (
    COMMON
    + r"""
args = sys.argv[1:]
fields = args[args.index("-o") + 1].split(",") if "-o" in args else ["JobID", "State"]
if "-n" not in args and "--noheader" not in args:
    print("|".join(fields))
for jid in ids(args):
    if state(jid) is not None:
        values = {"JobID": jid, "State": state(jid), "NodeList": "localhost"}
        print("|".join(values.get(f, "") for f in fields))
"""
)

SQUEUE = (
    COMMON
    + r"""
for jid in ids(sys.argv[1:]):
    if state(jid) in ("PENDING", "RUNNING", "REQUEUED"):
        print(f"{jid}|{state(jid)}")
"""
)

SCANCEL = (
    COMMON
    + r"""
args = sys.argv[1:]
jid = next(a for a in args if a.isdigit())
sig = next((a.split("=", 1)[1] for a in args if a.startswith("--signal=")), None)
if "--signal" in args:
    sig = args[args.index("--signal") + 1]
if sig is None:
    (STATE / f"{jid}.cancel").touch()
    sig = "TERM"
signum = getattr(signal, sig if sig.startswith("SIG") else "SIG" + sig)
for pid in (STATE / f"{jid}.pids").read_text().split():
    try:
        os.kill(int(pid), signum)
    except ProcessLookupError:
        pass
"""
)

SCONTROL = (
    COMMON
    + r"""
if sys.argv[1] == "requeue":
    (STATE / f"{sys.argv[2]}.requeue").touch()
"""
)

SCRIPTS = {
    "sbatch": SBATCH,
    "fake_slurm_job": JOB,
    "srun": SRUN,
    "sacct": SACCT,
    "squeue": SQUEUE,
    "scancel": SCANCEL,
    "scontrol": SCONTROL,
}


def install(tmp_path: Path) -> dict[str, str]:
    """Write the fake commands; returns os.environ with them first on PATH and FAKE_SLURM_DIR set."""
    bin_dir, state = tmp_path / "bin", tmp_path / "slurm-state"
    bin_dir.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    for name, body in SCRIPTS.items():
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "FAKE_SLURM_DIR": str(state)}


def submitted_script(env: dict[str, str], job_id: str) -> str:
    """The sbatch script as SLURM received it."""
    return (Path(env["FAKE_SLURM_DIR"]) / f"{job_id}.sbatch").read_text()
