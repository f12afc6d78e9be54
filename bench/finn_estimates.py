#!/usr/bin/env python3
"""FINN (finn-plus) estimate-only flow without Vivado; runs in FINN's environment (`make finn-env`), called by
bench/finn_compare.py:

    .finn-venv/bin/python bench/finn_estimates.py MODEL.onnx --target-fps F --out OUT.json

Runs FINN's own build steps (finn.builder.build_dataflow_steps, in the order of
finn.builder.build_dataflow_config.estimate_only_dataflow_steps) on a QONNX model
exported by Brevitas, then FINN's analytical analyses (res_estimation,
exp_cycles_per_layer) and prints / writes per-layer estimates.

Vivado is only needed by finn.xsi (RTL simulation). build_dataflow_steps does
`from finn.xsi import SimEngine` at import time, which triggers finn.xsi's lazy
__getattr__ -> ensure_available() -> OSError without XILINX_VIVADO. We pre-bind a
placeholder `SimEngine` attribute on the (real) finn.xsi module, so that import
succeeds; SimEngine is only used by rtlsim steps that this script never runs.

Usage:
  python finn_estimates.py MODEL.onnx --target-fps F [--board Pynq-Z2 | --fpga-part PART]
                           [--clock-ns 10] [--out OUT.json] [--workdir DIR]
"""
import argparse
import importlib.metadata
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

T0 = time.time()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--target-fps", type=float, required=True)
    ap.add_argument("--board", default=None, help="FINN board name, e.g. Pynq-Z2 (default if no part)")
    ap.add_argument("--fpga-part", "--fpgapart", dest="fpga_part", default=None,
                    help="FPGA part, e.g. xc7z020clg400-1")
    ap.add_argument("--clock-ns", type=float, default=10.0)
    ap.add_argument("--out", default=None, help="JSON output (default: <workdir>/finn_estimates.json)")
    ap.add_argument("--mvau-wwidth-max", type=int, default=None,
                    help="DataflowBuildConfig.mvau_wwidth_max for SetFolding (FINN default 36)")
    ap.add_argument("--no-prepost", action="store_true",
                    help="skip FINN's BNN-PYNQ pre/post-processing (uint8 input /255, TopK k=1)")
    ap.add_argument("--workdir", default=None,
                    help="FINN output_dir/FINN_BUILD_DIR root (default runs/finn/<model>_<fps>)")
    args = ap.parse_args()
    if args.board is None and args.fpga_part is None:
        args.board = "Pynq-Z2"

    stem = Path(args.model).stem
    fps_s = format(args.target_fps, "f").rstrip("0").rstrip(".")
    workdir = Path(args.workdir or f"runs/finn/{stem}_fps{fps_s}{'_raw' if args.no_prepost else ''}{f'_ww{args.mvau_wwidth_max}' if args.mvau_wwidth_max else ''}").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "build").mkdir(exist_ok=True)
    # FINN settings are rebuilt from FINN_BUILD_DIR (finn.util.settings._initialize_from_environment)
    os.environ["FINN_BUILD_DIR"] = str(workdir / "build")

    # --- make build_dataflow_steps importable without Vivado (see module docstring)
    import finn.xsi

    if "SimEngine" not in vars(finn.xsi):
        class _NoSimEngine:  # placeholder: rtlsim is never used here
            def __init__(self, *a, **k):
                raise RuntimeError("RTL simulation (finn.xsi) requires Vivado; not available")
        finn.xsi.SimEngine = _NoSimEngine

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import finn.builder.build_dataflow_steps as S
    from finn.analysis.fpgadataflow.dataflow_performance import dataflow_performance
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    from finn.builder.build_dataflow_config import (
        DataflowBuildConfig,
        DataflowOutputType,
        estimate_only_dataflow_steps,
    )
    from finn.transformation.fpgadataflow.annotate_cycles import AnnotateCycles

    cfg = DataflowBuildConfig(
        output_dir=str(workdir / "finn_output"),
        synth_clk_period_ns=args.clock_ns,
        target_fps=args.target_fps,
        board=args.board,
        fpga_part=args.fpga_part,
        generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS],
        save_intermediate_models=True,
    )
    if args.mvau_wwidth_max is not None:
        cfg.mvau_wwidth_max = args.mvau_wwidth_max
    fpgapart = cfg._resolve_fpga_part()
    target_cycles = cfg._resolve_cycles_per_frame()

    model = ModelWrapper(str(Path(args.model).resolve()))
    step_times = {}
    pre_steps = []
    if not args.no_prepost:
        # finn-plus' own custom steps, as used by FINN's BNN-PYNQ/GTSRB examples:
        # raw UINT8 input divided by 255 (ToTensor) and a Top-1 TopK (-> LabelSelect)
        from finn.builder.custom_step_library.general import (
            add_postproc_top1,
            add_preproc_divide_by_255,
        )
        in_name = model.graph.input[0].name
        assert len(model.find_consumers(in_name)) == 1 and model.graph.node[0].input[0] == in_name
        model = add_preproc_divide_by_255(model, cfg)
        model = add_postproc_top1(model, cfg)
        pre_steps = ["add_preproc_divide_by_255", "add_postproc_top1"]
    # FINN's estimate-only step list, minus step_generate_estimate_reports which we
    # reproduce below (it additionally writes reports into cfg.output_dir/report).
    steps = [s for s in estimate_only_dataflow_steps if s != "step_generate_estimate_reports"]
    workarounds = []

    def clip_xnor_thresholds(model):
        """Workaround (finn-plus 1.6.1): MVAU.minimize_accumulator_width gives XNOR-popcount
        MVAUs (binaryXnorMode=1) the *bipolar* dot-product range [-MW, MW] (signed accDataType),
        so RoundAndClipThresholds leaves negative thresholds, which MVAU_hls's
        minimize_weight_bit_width -> get_hw_compatible_threshold_tensor then rejects
        (assert thresholds >= 0). The popcount is in [0, MW], so clipping the (popcount-domain)
        thresholds to [0, MW+1] is exactly equivalent. Only happens when neurons are constant
        (out-of-range thresholds), e.g. with random weights/BN statistics."""
        import numpy as np
        for node in model.graph.node:
            if not node.op_type.startswith("MVAU") or len(node.input) < 3:
                continue
            inst = getCustomOp(node)
            if inst.get_nodeattr("binaryXnorMode") != 1 or inst.get_nodeattr("noActivation") != 0:
                continue
            T = model.get_initializer(node.input[2])
            mw = inst.get_nodeattr("MW")
            Tc = np.clip(T, 0, mw + 1).astype(np.float32)
            n = int((Tc != T).sum())
            if n:
                model.set_initializer(node.input[2], Tc)
                workarounds.append(f"{node.name}: clipped {n}/{T.size} XNOR thresholds to [0, MW+1={mw + 1}]"
                                   f" (were in [{float(T.min()):g}, {float(T.max()):g}])")
        return model

    for name in steps:
        t = time.time()
        print(f"[finn_estimates] {name} ...", file=sys.stderr, flush=True)
        model = getattr(S, name)(model, cfg)
        if name == "step_convert_to_hw":
            model = clip_xnor_thresholds(model)
        step_times[name] = round(time.time() - t, 2)
        model.save(str(cfg.get_intermediate_models_directory() / f"{name}.onnx"))
    # FINN's own report step as well (writes estimate_*.json under finn_output/report)
    t = time.time()
    model = S.step_generate_estimate_reports(model, cfg)
    step_times["step_generate_estimate_reports"] = round(time.time() - t, 2)

    # --- analyses (same calls as step_generate_estimate_reports)
    cycles = model.analysis(exp_cycles_per_layer)
    res = model.analysis(partial(res_estimation, fpgapart=fpgapart))
    model = model.transform(AnnotateCycles())
    perf = dict(model.analysis(dataflow_performance))

    keys = ["LUT", "BRAM_18K", "URAM", "DSP"]
    layers = []
    for node in model.graph.node:
        if node.name not in res and node.name not in cycles:
            continue
        inst = getCustomOp(node)
        attrs = {a: inst.get_nodeattr(a) for a in ("PE", "SIMD", "mem_mode", "ram_style",
                                                      "resType", "binaryXnorMode", "noActivation")
                 if a in inst.get_nodeattr_types()}
        r = res.get(node.name, {})
        layers.append({
            "name": node.name,
            "op_type": node.op_type,
            **{k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()},
            "cycles": cycles.get(node.name),
            **{k: r.get(k, 0) for k in keys},
            "res_raw": r,
        })
    totals = {k: sum(float(l[k] or 0) for l in layers) for k in keys}
    totals["max_cycles"] = int(perf["max_cycles"])
    totals["max_cycles_node"] = perf.get("max_cycles_node_name")
    totals["critical_path_cycles"] = int(perf["critical_path_cycles"])
    totals["estimated_throughput_fps"] = (1e9 / args.clock_ns) / perf["max_cycles"]
    totals["estimated_latency_ns"] = perf["critical_path_cycles"] * args.clock_ns

    # --- print table
    hdr = f"{'node':<36} {'op_type':<38} {'PE':>4} {'SIMD':>5} {'cycles':>8} {'LUT':>9} {'BRAM18':>7} {'URAM':>5} {'DSP':>5}"
    print(f"FINN {importlib.metadata.version('finn-plus')} estimates: {args.model}")
    print(f"part={fpgapart} board={args.board} clock={args.clock_ns} ns target_fps={fps_s} "
          f"-> target_cycles_per_frame={target_cycles}")
    print(hdr)
    print("-" * len(hdr))
    fmt = lambda v: "-" if v is None else (f"{v:.0f}" if isinstance(v, float) else str(v))
    for l in layers:
        print(f"{l['name']:<36} {l['op_type']:<38} {fmt(l.get('PE')):>4} {fmt(l.get('SIMD')):>5} "
              f"{fmt(l['cycles']):>8} {l['LUT']:>9.0f} {l['BRAM_18K']:>7.0f} {l['URAM']:>5.0f} {l['DSP']:>5.0f}")
    print("-" * len(hdr))
    print(f"{'TOTAL':<36} {'':<38} {'':>4} {'':>5} {totals['max_cycles']:>8} {totals['LUT']:>9.0f} "
          f"{totals['BRAM_18K']:>7.0f} {totals['URAM']:>5.0f} {totals['DSP']:>5.0f}")
    print(f"max_cycles={totals['max_cycles']} ({totals['max_cycles_node']}) -> "
          f"{totals['estimated_throughput_fps']:.0f} fps; critical_path_cycles="
          f"{totals['critical_path_cycles']} -> latency {totals['estimated_latency_ns'] / 1e3:.2f} us")

    for w in workarounds:
        print(f"workaround: {w}")
    elapsed = round(time.time() - T0, 2)
    print(f"elapsed {elapsed} s (steps: {step_times})")

    out = Path(args.out) if args.out else workdir / "finn_estimates.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "model": str(Path(args.model).resolve()),
        "finn_version": {p: importlib.metadata.version(p) for p in ("finn-plus", "qonnx", "brevitas")},
        "target": {"board": args.board, "fpga_part": fpgapart, "clock_ns": args.clock_ns,
                   "target_fps": args.target_fps, "target_cycles_per_frame": target_cycles},
        "flow": {"steps": pre_steps + steps + ["step_generate_estimate_reports"],
                 "mvau_wwidth_max": cfg.mvau_wwidth_max,
                 "folding_two_pass_relaxation": cfg.folding_two_pass_relaxation,
                 "standalone_thresholds": cfg.standalone_thresholds,
                 "finn_output_dir": cfg.output_dir,
                 "estimate_kind": "analytical (HWCustomOp.node_res_estimation / get_exp_cycles)"},
        "layers": layers,
        "totals": totals,
        "dataflow_performance": {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in perf.items()},
        "workarounds": workarounds,
        "step_times_s": step_times,
        "elapsed_s": elapsed,
    }
    out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
