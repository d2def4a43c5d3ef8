"""The benchmark as tables on the terminal."""

from __future__ import annotations

from typing import Any, TextIO


def _table(out: TextIO, title: str, header: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)] if rows else [len(h) for h in header]
    out.write(f"\n{title}\n")
    out.write("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "\n")
    for row in rows:
        out.write("  ".join(str(x).ljust(w) for x, w in zip(row, widths)) + "\n")


def print_table(result: dict[str, Any], out: TextIO) -> None:
    """Machine, raw, pipeline, baseline, agreement, static scene, start-up, remote (with --remote) and goals."""
    machine = result["machine"]
    out.write(f"{machine['cpu']}, {machine['cores']} cores, {machine.get('lanes', 1)} model lane(s) of "
              f"{machine.get('threads_per_lane', machine['threads'])} thread(s), "
              f"flags {' '.join(machine['flags'])}, torch {machine['torch']}; model {result['model']}\n")
    _table(out, "raw model (images per second with every lane busy; latency per call; with features: "
                "predict_with_features in windows alternating with predict)",
           ["backend", "precision", "batch", "img/s", "p50 ms", "p99 ms", "img/s with features", "÷ without"],
           [[r["backend"], r["precision"], r["batch"], r["img_per_s"], r["latency_ms_p50"], r["latency_ms_p99"],
             _blank(r.get("img_per_s_with_features")), _blank(r.get("features_ratio"))] for r in result["raw"]])
    _table(out, "pipeline (replayed 640x480 camera frames → publisher)",
           ["backend", "precision", "cameras", "rate", "results/s", "raw just before", "p50 ms", "p99 ms", "drops"],
           [[r["backend"], r["precision"], r["cameras"], f"{r['paced_fps']:.0f} fps" if r["paced_fps"] else "unlimited",
             r["results_per_s"], r.get("raw_img_per_s", ""), r["latency_ms_p50"], r["latency_ms_p99"], f"{r['drop_rate']:.1%}"]
            for r in result["pipeline"]])
    out.write(f"\nbaseline ({result['baseline']['preprocessing']}, {result['baseline']['backend']}): "
              f"{result['baseline']['img_per_s']} img/s\n")
    _table(out, "top-1 agreement with torch fp32", ["model", "backend", "precision", "frames", "agreement"],
           [[r["model"], r["backend"], r["precision"], r["frames"], f"{r['top1_agreement']:.2%}"] for r in result["agreement"]])
    scene = result.get("static_scene") or {}
    if scene:
        out.write(f"\nstatic scene at 30 fps ({scene['backend']} {scene['precision']}): CPU {scene['cpu_s_skip_on']} s with "
                  f"skipping vs {scene['cpu_s_skip_off']} s without = {scene['cpu_ratio']:.0%}\n")
    if result.get("startup"):
        out.write(f"start-up to first result: {result['startup']['first_s']} s, warm cache {result['startup']['warm_s']} s\n")
        for path in result["startup"].get("paths") or []:
            out.write(f"  {path['backend']} {path['precision']}: empty cache → first result {path['cold_first_s']} s, "
                      f"{path['runs_on']} from {path['takeover_s']} s; warm → first result {path['warm_first_s']} s\n")
    for skipped in result.get("skipped", []):
        out.write(f"skipped {skipped['backend']} {skipped['precision']}: {skipped['reason']}\n")
    if "remote" in result:
        _remote(out, result["remote"])
    _table(out, "goals", ["goal", "measured", "target", "met"],
           [[name, goal["value"], goal["target"],
             {True: "yes", False: "NO", None: goal.get("note", "not measured")}[goal["met"]]]
            for name, goal in result["goals"].items()])


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _remote(out: TextIO, remote: dict[str, Any]) -> None:
    one = remote.get("one_kiosk")
    if one:
        _table(out, f"remote {remote['spec']} (model {remote['model']}): one kiosk in this process, "
                    f"{one['cameras']} cameras at {one['paced_fps']:.0f} fps",
               ["results/s", "p50 ms", "p99 ms", "drops", "model call ms", "frames/call", "client CPU ms/frame",
                "no model", "for the model", "beyond preprocessing", "preprocessing alone"],
               [[one["results_per_s"], one["latency_ms_p50"], one["latency_ms_p99"], f"{one['drop_rate']:.1%}",
                 one["model_call_ms_mean"], one["frames_per_call"], one["cpu_ms_per_frame"],
                 one["cpu_ms_per_frame_without_model"], one["client_cpu_ms_per_frame_for_the_model"],
                 one["cpu_ms_per_frame_beyond_preprocessing"], one["preprocess_cpu_ms_per_frame"]]])
        for label, key in (("served model", "cpu_ms_per_frame_by_thread"), ("no model", "cpu_ms_per_frame_without_model_by_thread")):
            threads = one.get(key) or {}
            out.write(f"client CPU ms/frame by thread, {label}: "
                      + ", ".join(f"{name} {ms}" for name, ms in threads.items()) + "\n")
    if remote.get("kiosks"):
        _table(out, f"remote: {len(remote['kiosks'])} kiosks (`streamrec run` processes) on the same server",
               ["kiosk", "cameras", "results/s", "p50 ms", "p99 ms", "out of order", "missing", "dropped", "lost",
                "exit", "stop s"],
               [[k["kiosk"], k["cameras"], k["results_per_s"], k["latency_ms_p50"], k["latency_ms_p99"],
                 k["out_of_order"], k["missing"], k["dropped"], k["lost"], k["exit_code"], k["stop_s"]]
                for k in remote["kiosks"]])
    if remote.get("error"):
        out.write(f"\nremote {remote['spec']}: not measured: {remote['error']}\n")
