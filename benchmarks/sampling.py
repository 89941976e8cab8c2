"""Which backend stylizes fastest here? Per-UNet-step latency and end-to-end stylize, torch vs ONNX Runtime.

Each variant runs in its own process, so cold start (model load, ONNX session creation) and peak memory are its
own. The workload is the product's: one 5.11 s window (Riffusion's format) stylized at 50 steps x strength 0.5
(BRS + 25 guided steps). Ratios are against torch fp32 measured in the same run; the fraction of peak compares
the UNet's counted FLOPs per step with a matmul peak measured in the same run.

    python benchmarks/sampling.py                       # tiny model: seconds
    python benchmarks/sampling.py --arch riffusion      # Riffusion's architecture, random weights: minutes
    python benchmarks/sampling.py --arch mini           # the shipped mini model (its own 5.1 s window): seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from restyle.engine import load_base_model  # noqa: E402
from restyle.engine.audio import Clip  # noqa: E402
from restyle.engine.backends import create_backend  # noqa: E402
from restyle.engine.engine import Engine  # noqa: E402
from restyle.engine.library import StyleLibrary  # noqa: E402
from restyle.engine.sampler import SamplerSettings  # noqa: E402
from restyle.engine.style import Style, StyleInfo, StyleMix, TimeVaryingEmbedding  # noqa: E402
from signals import chord  # noqa: E402

MODELS = {"tiny": "tiny", "mini": "mini", "riffusion": "random-riffusion"}
# name: (backend, torch precision, ONNX export precision)
VARIANTS = {
    "torch-fp32": ("torch", "fp32", None),
    "torch-bf16": ("torch", "bf16", None),
    "torch-fp16": ("torch", "fp16", None),
    "onnx-fp32": ("onnx", "fp32", "fp32"),
    "onnx-int8": ("onnx", "fp32", "int8"),
    "onnx-fp16": ("onnx", "fp32", "fp16"),
}
CPU_VARIANTS = ["torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8"]
GPU_VARIANTS = ["torch-fp32", "torch-fp16", "onnx-fp32", "onnx-fp16"]
WORKLOAD = SamplerSettings(strength=0.5, scale=5.0, steps=50, seed=0)


class Timed:
    """Wraps a callable and records how long each call took."""

    def __init__(self, fn, device):
        self.fn, self.device, self.seconds = fn, device, []

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        result = self.fn(*args, **kwargs)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - started)
        return result


def run_variant(arch: str, variant: str, device: str) -> dict:
    """One variant in this process: load, (export), warm up, then stylize one window and time its parts."""
    backend_name, dtype, precision = VARIANTS[variant]
    started = time.perf_counter()
    base = load_base_model(MODELS[arch], device=device, dtype=dtype)
    load_s = time.perf_counter() - started
    export_s, onnx_dir = 0.0, None
    if precision:
        from restyle.engine.onnx_export import ExportSettings, export_onnx

        onnx_dir = Path(tempfile.mkdtemp()) / "export"
        started = time.perf_counter()
        export_onnx(base, onnx_dir, ExportSettings(precision=precision), check=False)
        export_s = time.perf_counter() - started
    started = time.perf_counter()
    backend = create_backend(base, backend_name, onnx_dir)
    session_s = time.perf_counter() - started

    engine = Engine(base, StyleLibrary(tempfile.mkdtemp()), backend=backend)
    unet = Timed(backend.noise_predictor, base.device)
    engine.sampler.noise_predictor = unet
    encode, decode = Timed(backend.vae.encode, base.device), Timed(backend.vae.decode, base.device)
    backend.vae.encode, backend.vae.decode = encode, decode  # noqa: B010 - instrumenting the instances
    synthesis = Timed(engine.converter.mel_to_audio, base.device)  # mel inverse + phase (input's or Griffin-Lim)
    engine.converter.mel_to_audio = synthesis

    info = StyleInfo(name="bench", base_model=base.model_id, base_fingerprint=base.fingerprint, embed_dim=base.embed_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = TimeVaryingEmbedding(base.embed_dim, torch.zeros(base.embed_dim)).to(base.device).eval()
    mix = StyleMix(((Style(info, module), 1.0),))
    fmt = base.spectrogram
    clip = Clip(chord([220.0, 277.2, 329.6], fmt.window_samples / fmt.sample_rate, fmt.sample_rate)[None],
                fmt.sample_rate)

    engine.stylize_samples(clip, mix, SamplerSettings(strength=0.5, steps=2))  # warm-up: first runs are slow
    for timer in (unet, encode, decode, synthesis):
        timer.seconds.clear()
    started = time.perf_counter()
    engine.stylize_samples(clip, mix, WORKLOAD)
    total_s = time.perf_counter() - started
    guided = unet.seconds[1:] if WORKLOAD.brs else unet.seconds
    parts = {"unet": sum(unet.seconds), "vae_encode": sum(encode.seconds), "vae_decode": sum(decode.seconds),
             "mel_to_audio": sum(synthesis.seconds)}
    parts["other"] = total_s - sum(parts.values())
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if base.device.type == "cuda":
        peak_gb = torch.cuda.max_memory_allocated() / 2**30
    return {"variant": variant, "arch": arch, "device": str(base.device), "cold_start_s": load_s + session_s,
            "load_s": load_s, "session_s": session_s, "export_s": export_s, "step_s": statistics.median(guided),
            "end_to_end_s": total_s, "parts_s": parts, "peak_memory_gb": peak_gb, "unet_calls": len(unet.seconds)}


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, repeat: int = 10) -> float:
    """Measured TFLOP/s of a large square matmul: the ceiling for the UNet's matrix work."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    started = time.perf_counter()
    for _ in range(repeat):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * repeat / (time.perf_counter() - started) / 1e12


def unet_step_flops(arch: str, device: str) -> float:
    """FLOPs of one guided step (a UNet batch of 2 at one window's latent size), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    from restyle.engine.onnx_export import example_inputs

    base = load_base_model(MODELS[arch], device=device, dtype="fp32")
    inputs = example_inputs(base, batch=2)["unet"]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        base.unet(inputs["sample"], inputs["timestep"], encoder_hidden_states=inputs["context"])
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=list(MODELS), default="tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", help="comma-separated (default: all that fit the device)")
    parser.add_argument("--json", default=None, help="write the results here (default: benchmarks/results-ARCH.json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_variant(args.arch, args.worker, args.device)))
        return

    from restyle.engine.devices import pick_device

    device = pick_device(args.device)
    variants = args.variants.split(",") if args.variants else (GPU_VARIANTS if device.type == "cuda" else CPU_VARIANTS)
    peaks = {"fp32": matmul_peak(device, torch.float32),
             "bf16" if device.type == "cpu" else "fp16": matmul_peak(device, torch.bfloat16 if device.type == "cpu"
                                                                   else torch.float16)}
    flops = unet_step_flops(args.arch, str(device))
    results = []
    for variant in variants:
        print(f"running {variant} ...", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, __file__, "--arch", args.arch, "--device", str(device), "--worker",
                               variant], capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        if done.returncode != 0:
            print(f"{variant} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    report = {"machine": {"platform": platform.platform(), "processor": cpu_name(),
                          "cpus": os.cpu_count(), "device": str(device), "torch": torch.__version__},
              "arch": args.arch, "workload": "one 5.11 s window, 50 steps x strength 0.5 (BRS + 25 guided steps)",
              "unet_step_tflop": flops / 1e12, "matmul_peak_tflops": peaks, "results": results}
    print_table(report)
    out = Path(args.json or REPO / "benchmarks" / f"results-{args.arch}.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")


def cpu_name() -> str:
    """The CPU's model name and its bf16 matrix features (they decide which precision is fast)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    features = [flag for flag in ("amx_bf16", "avx512_bf16", "avx512f") if f" {flag}" in info]
    return f"{name} ({', '.join(features) or 'no AVX-512'})"


def print_table(report: dict) -> None:
    results = report["results"]
    baseline = next((r for r in results if r["variant"] == "torch-fp32"), results[0] if results else None)
    if baseline is None:
        return
    peaks = report["matmul_peak_tflops"]
    flops = report["unet_step_tflop"]
    print(f"\n{report['arch']} on {report['machine']['device']} ({report['machine']['cpus']} CPUs); "
          f"UNet step {flops * 1000:.1f} GFLOP; matmul peak " + ", ".join(f"{k} {v:.2f} TFLOP/s" for k, v in peaks.items()))
    print(f"{'variant':12s} {'step s':>8s} {'x fp32':>7s} {'% peak':>7s} {'e2e s':>8s} {'x fp32':>7s} "
          f"{'unet':>7s} {'vae':>7s} {'synth':>7s} {'cold s':>7s} {'export s':>8s} {'peak GB':>8s}")
    for r in results:
        precision = r["variant"].split("-")[1]
        peak = peaks.get(precision)  # int8 has no measured peak to compare with
        achieved = flops / r["step_s"]
        p = r["parts_s"]
        print(f"{r['variant']:12s} {r['step_s']:8.3f} {baseline['step_s'] / r['step_s']:6.2f}x "
              f"{100 * achieved / peak if peak else float('nan'):6.1f}% {r['end_to_end_s']:8.2f} "
              f"{baseline['end_to_end_s'] / r['end_to_end_s']:6.2f}x {p['unet']:7.2f} "
              f"{p['vae_encode'] + p['vae_decode']:7.2f} {p['mel_to_audio']:7.2f} {r['cold_start_s']:7.2f} "
              f"{r['export_s']:8.2f} {r['peak_memory_gb']:8.2f}")


if __name__ == "__main__":
    main()
