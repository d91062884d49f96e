"""Resident memory of a running agent (``binsight device run``), and of ONNX Runtime + the model alone.

The agent runs as its own process on an image-folder source (640x480 frames) against a private
Mosquitto, capturing every ``--interval`` seconds; VmRSS is sampled from /proc after warm-up and
the peak (VmHWM) reported, with the resident set split into anonymous memory (the agent's own:
heap, Python objects, the model's weights) and file-backed pages (shared libraries: page cache,
whose size depends on the kernel and the disk's readahead, see docs/device.md). The agent is
configured as deployed: a release public key set.

    nice .venv/bin/python bench/device_rss.py --model model.onnx     # a real exported model
    nice .venv/bin/python bench/device_rss.py                        # the tests' tiny model
    nice .venv/bin/python bench/device_rss.py --model model.onnx --no-release   # without
                                                      # [inference] release_startup_pages
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from device_common import Broker, images, model_or_tiny, tempdir

from binsight.device.memory import memory_use
from binsight.signing import format_public_key, generate_key


def _status(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) / 1024.0
    use = memory_use(pid)
    if use is not None:
        out["anon"] = use.anon_mb
    return out


_ORT_ONLY = """
import sys, time, numpy as np, onnxruntime as ort
o = ort.SessionOptions(); o.intra_op_num_threads = 1
s = ort.InferenceSession(sys.argv[1], o, providers=["CPUExecutionProvider"])
h, w = 224, 224
import json
meta = s.get_modelmeta().custom_metadata_map
if "binsight.input_size" in meta:
    h, w = json.loads(meta["binsight.input_size"])
for _ in range(5):
    s.run(None, {s.get_inputs()[0].name: np.zeros((1, h, w, 3), np.uint8)})
print(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--no-release", action="store_true", help="release_startup_pages = false")
    args = ap.parse_args()
    tmp = tempdir()
    model, desc = model_or_tiny(args.model, tmp)
    folder = images(tmp)
    broker = Broker(tmp)
    cfg = tmp / "device.toml"
    cfg.write_text(
        f'bin_id = "bench-rss"\nmodel = "{model}"\n'
        f'[camera]\nsource = "{folder}"\ninterval_s = {args.interval}\n'
        f'jitter = 0.0\n[mqtt]\nport = {broker.port}\n[outbox]\npath = "{tmp / "o.db"}"\n'
        "[stats]\ninterval_s = 5\n[labelling]\nevery_n = 10\n"
        f"[inference]\nrelease_startup_pages = {'false' if args.no_release else 'true'}\n"
        f'[updates]\npublic_key = "{format_public_key(generate_key().public_key())}"\n'
    )
    proc = subprocess.Popen([sys.executable, "-m", "binsight", "-q", "device", "run", "--config", str(cfg)])
    samples: list[float] = []
    anon: list[float] = []
    try:
        time.sleep(min(10.0, args.seconds / 3))  # load, warm-up, first captures
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            status = _status(proc.pid)
            samples.append(status["VmRSS"])
            if "anon" in status:
                anon.append(status["anon"])
            time.sleep(0.5)
        peak = _status(proc.pid)["VmHWM"]
    finally:
        proc.terminate()
        proc.wait(30)
        broker.stop()
    ort_only = float(subprocess.run([sys.executable, "-c", _ORT_ONLY, str(model)], capture_output=True,
                                    text=True, check=True).stdout.strip()) / 1024.0  # fmt: skip
    print(f"model: {desc}")
    median = sorted(samples)[len(samples) // 2]
    print(f"agent RSS over {args.seconds:.0f} s of captures every {args.interval:g} s: "
          f"median {median:.1f} MB, max {max(samples):.1f} MB, peak (VmHWM) {peak:.1f} MB")  # fmt: skip
    if anon:
        anon_median = sorted(anon)[len(anon) // 2]
        print(f"  of which anonymous (median): {anon_median:.1f} MB; file-backed (libraries): "
              f"{median - anon_median:.1f} MB")  # fmt: skip
    print(f"python + numpy + onnxruntime + model alone (5 runs): {ort_only:.1f} MB")


if __name__ == "__main__":
    main()
