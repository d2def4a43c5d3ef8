"""The `streamrec` command line: parse arguments, run a subcommand, turn errors into exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Callable, Optional, Sequence

from config.loader import ConfigError, Overrides, load_config
from config.schema import DEFAULT_ENDPOINT
from inference.errors import FetchError, ModelError
from stream.service import exit_codes
from stream.service.logs import setup_logging
from stream.service.process_exit import exit_after_cleanup
from stream.web.errors import WebError
from stream.wire.errors import CurveKeyError, PublishError

log = logging.getLogger("streamrec")


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _count_or_auto(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (automatic) or more, got {text}")
    return value


def _remote_spec(text: str) -> str:
    from inference.remote import parse_remote_spec

    try:
        parse_remote_spec(text)
    except ModelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _add_run_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the recognizer on the configured cameras")
    run.add_argument("--config", type=Path, help="TOML config file (default: the packaged config/default.toml)")
    run.add_argument("--source", action="append", default=[], metavar="SPEC",
                     help="camera source, repeatable (usb:0, /dev/video0, rtsp://…, file:PATH, synthetic); replaces the config's cameras")
    run.add_argument("--publish", metavar="ENDPOINT", help=f"ZeroMQ endpoint to bind (default {DEFAULT_ENDPOINT})")
    run.add_argument("--headless", action="store_true", help="no overlay window")
    run.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop after this many seconds")
    run.add_argument("--model", metavar="SPEC", help="resnet18, a bundle path, onnx:FILE, torchscript:FILE or "
                     "triton:grpc://HOST:PORT/MODEL")
    run.add_argument("--labels", metavar="FILE", help="labels file for onnx:/torchscript: models")
    run.add_argument("--http", metavar="HOST:PORT", help="serve the web page and HTTP API here (e.g. 127.0.0.1:8080)")
    run.set_defaults(handler=_cmd_run)


def _add_bridge_parser(commands: argparse._SubParsersAction) -> None:
    bridge = commands.add_parser("bridge", help="publish a running streamrec's events and camera states to MQTT")
    bridge.add_argument("broker", metavar="mqtt://BROKER[:PORT]",
                        help="the broker (mqtts:// for TLS; credentials from STREAMREC_MQTT_USERNAME/_PASSWORD)")
    bridge.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help=f"publisher endpoint (default {DEFAULT_ENDPOINT})")
    bridge.add_argument("--kiosk", help="the kiosk's name in the topics (default: the host name)")
    bridge.add_argument("--results", action="store_true", help="also every result (QoS 0)")
    bridge.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="exit after this many seconds")
    bridge.add_argument("--server-key", type=Path, metavar="FILE", help="the publisher's CurveZMQ public key")
    bridge.add_argument("--client-key", type=Path, metavar="FILE", help="this client's CurveZMQ secret key")
    bridge.set_defaults(handler=_cmd_bridge)


def _add_subscribe_parser(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("subscribe", help="print published messages, one JSON object per line")
    sub.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help=f"publisher endpoint (default {DEFAULT_ENDPOINT})")
    sub.add_argument("--topic", action="append", default=[], metavar="PREFIX",
                     help="topic prefix to receive, repeatable (result/, event/cam0, heartbeat); default all")
    sub.add_argument("--count", type=int, metavar="N", help="exit after N messages")
    sub.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="exit after this many seconds")
    sub.add_argument("--basket", action="store_true",
                     help="print the running basket as a POS builds it from item_present events (once per event_id)")
    sub.add_argument("--server-key", type=Path, metavar="FILE",
                     help="the publisher's public CurveZMQ key (server.key) when it requires CurveZMQ")
    sub.add_argument("--client-key", type=Path, metavar="FILE",
                     help="this client's secret CurveZMQ key (NAME.key_secret); its NAME.key must be in publisher.curve_clients")
    sub.set_defaults(handler=_cmd_subscribe)


def _add_demo_parser(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="the self-checkout demo: trains its model once (cached), then runs a checkout lane")
    demo.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop after this many seconds")
    demo.add_argument("--headless", action="store_true", help="no overlay window")
    demo.add_argument("--publish", metavar="ENDPOINT", default=DEFAULT_ENDPOINT, help=f"ZeroMQ endpoint (default {DEFAULT_ENDPOINT})")
    demo.add_argument("--seed", type=int, default=None, help="checkout-lane scene seed")
    demo.add_argument("--rebuild", action="store_true", help="train the demo model again even if it is cached")
    demo.add_argument("--evaluate", action="store_true",
                      help="measure the demo model instead of running it: validation accuracy and checkout-lane events")
    demo.set_defaults(handler=_cmd_demo)


def _add_bench_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="measure raw model speed per backend/precision, the pipeline, and agreement")
    bench.add_argument("--quick", action="store_true", help="a short run (under a minute): fewer paths, shorter windows")
    bench.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    bench.add_argument("--threads", type=_count_or_auto, default=0, metavar="N", help="model threads in all (default: the CPUs)")
    bench.add_argument("--lanes", type=_count_or_auto, default=0, metavar="N",
                       help="batches the model runs at once (default: one per thread); compare 1 with the default")
    bench.add_argument("--remote", type=_remote_spec, metavar="SPEC",
                       help="also measure a served model, triton:grpc://HOST:PORT/MODEL: one kiosk in this process and "
                            "three `streamrec run` kiosks on the same server (exit 78 when it cannot be reached)")
    bench.set_defaults(handler=_cmd_bench)


def _add_finetune_parser(commands: argparse._SubParsersAction) -> None:
    tune = commands.add_parser("finetune", help="fine-tune ResNet-18 on DATA_DIR (one folder per class) into a model bundle")
    tune.add_argument("data_dir", type=Path, metavar="DATA_DIR")
    tune.add_argument("--out", type=Path, required=True, metavar="BUNDLE", help="bundle file to write")
    tune.add_argument("--val", type=Path, metavar="DIR", help="validation images (same classes); default: split off --val-fraction")
    tune.add_argument("--val-fraction", type=float, default=0.15, help="share of each class held out for validation (0.15)")
    tune.add_argument("--input-size", type=int, default=None,
                      help="square input size in pixels (224 from ImageNet weights, 160 from scratch)")
    tune.add_argument("--min-steps", type=int, default=200,
                      help="optimizer steps a small set trains for at least, with no early stop before (200)")
    tune.add_argument("--epochs", type=int, default=10, help="most epochs (10); stops early when validation stops improving")
    tune.add_argument("--patience", type=int, default=3, help="epochs without improvement before stopping (3)")
    tune.add_argument("--batch-size", type=int, default=32)
    tune.add_argument("--lr", type=float, default=None, help="peak learning rate (1e-3 from ImageNet weights, 2e-3 from scratch)")
    tune.add_argument("--freeze", default="auto", choices=("auto", "none", "stem", "layer1", "layer2", "layer3"),
                      help="layers kept fixed; auto: up to layer1 from ImageNet weights, none from scratch")
    tune.add_argument("--weights", type=Path, help="ImageNet ResNet-18 weights to start from (default: the hub cache)")
    tune.add_argument("--name", help="model name used in the model id (default: the bundle file's name)")
    tune.add_argument("--seed", type=int, default=0)
    tune.set_defaults(handler=_cmd_finetune)


def _add_enroll_parser(commands: argparse._SubParsersAction) -> None:
    enroll = commands.add_parser("enroll", help="add a product to a bundle's gallery from photos or a camera (no "
                                 "retraining), or remove one")
    enroll.add_argument("--model", type=Path, required=True, metavar="BUNDLE", help="the bundle to enroll into")
    enroll.add_argument("--label", help="the product's name, as results and events will carry it")
    views = enroll.add_mutually_exclusive_group(required=True)
    views.add_argument("--images", type=Path, metavar="DIR", help="a folder of photos of the product")
    views.add_argument("--source", metavar="SPEC", help="a camera to hold the product in front of (usb:0, rtsp://…)")
    views.add_argument("--remove", metavar="LABEL", help="remove an enrolled product")
    enroll.add_argument("--seconds", type=_positive_float, default=10.0, help="how long --source records (10)")
    enroll.add_argument("--empty-label", action="append", dest="empty_labels", metavar="LABEL",
                        help="a trained label meaning no product (default: empty); views it sees are skipped")
    enroll.set_defaults(handler=_cmd_enroll)


def _add_soak_parser(commands: argparse._SubParsersAction) -> None:
    soak = commands.add_parser(
        "soak", help="run synthetic cameras with forced reconnects and check that memory, threads and fds stop growing")
    soak.add_argument("--minutes", type=_positive_float, default=10.0, help="how long to run (10)")
    soak.add_argument("--cameras", type=int, default=2, choices=range(1, 17), metavar="K", help="synthetic cameras (2)")
    soak.add_argument("--reconnect-every", type=_positive_float, default=5.0, metavar="S",
                      help="force a camera fault every S seconds per camera (5); every 5th is a wedged read")
    soak.add_argument("--model", metavar="SPEC", help="a real model to run (default: a tiny random CNN)")
    soak.set_defaults(handler=_cmd_soak)


def _add_check_config_parser(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser("check-config", help="validate a config file without starting anything")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_cmd_check_config)


def _add_model_parser(commands: argparse._SubParsersAction) -> None:
    model = commands.add_parser("model", help="fetch and verify model weights")
    actions = model.add_subparsers(dest="action", required=True, metavar="ACTION")
    fetch = actions.add_parser("fetch", help="download and verify the official ResNet-18 ImageNet weights")
    fetch.add_argument("--dest", type=Path, help="directory to write into (default: torch's hub cache)")
    fetch.add_argument("--url", help="download from this mirror instead of download.pytorch.org")
    fetch.set_defaults(handler=_cmd_model_fetch)
    verify = actions.add_parser("verify", help="check an installed ResNet-18 weights file's checksum")
    verify.add_argument("file", type=Path, nargs="?", help="weights file (default: the one `run` would load)")
    verify.set_defaults(handler=_cmd_model_verify)
    info = actions.add_parser("info", help="print what a model bundle holds (labels, input, metrics, provenance)")
    info.add_argument("bundle", type=Path)
    info.set_defaults(handler=_cmd_model_info)
    export = actions.add_parser("export", help="write a model (resnet18 or a bundle) as ONNX or TorchScript with its "
                                               "labels, or as a Triton model repository")
    export.add_argument("--model", default="resnet18", metavar="SPEC", help="resnet18 (default) or a bundle path")
    export.add_argument("--weights", type=Path, help="ResNet-18 weights file for --model resnet18")
    export.add_argument("--format", choices=("onnx", "torchscript", "triton"), required=True)
    export.add_argument("--out", type=Path, required=True, metavar="PATH",
                        help="model file (labels go to FILE's .labels.txt); for triton the repository folder")
    export.add_argument("--name", help="triton: the model's name in the repository (default: from its model id)")
    export.add_argument("--max-batch", type=_positive_int, default=64, help="triton: max_batch_size (default 64)")
    export.add_argument("--instances", type=_positive_int, default=1, help="triton: model instances (default 1)")
    export.add_argument("--kind", choices=("cpu", "gpu"), default="cpu", help="triton: where instances run (default cpu)")
    export.set_defaults(handler=_cmd_model_export)


def _add_keys_parser(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="CurveZMQ keys for a publisher reachable beyond loopback")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    generate = actions.add_parser("generate", help="write a key pair DIR/NAME.key (public) and DIR/NAME.key_secret (mode 0600)")
    generate.add_argument("dir", type=Path, metavar="DIR")
    generate.add_argument("--name", default="server", help="file name of the pair: server (default) or a POS client's name")
    generate.set_defaults(handler=_cmd_keys_generate)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(prog="streamrec", description="Real-time camera recognizer for self-checkout kiosks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_run_parser, _add_demo_parser, _add_subscribe_parser, _add_bridge_parser, _add_check_config_parser,
                _add_finetune_parser, _add_enroll_parser, _add_model_parser, _add_bench_parser, _add_soak_parser, _add_keys_parser):
        add(commands)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from stream.service.runner import run_pipeline

    overrides = Overrides(
        sources=tuple(args.source), endpoint=args.publish, headless=args.headless, model=args.model, labels=args.labels,
        http=args.http,
    )
    setup_logging("INFO")  # until the config says otherwise: loading may warn
    config = load_config(args.config, overrides)
    setup_logging(config.logging.level)
    return run_pipeline(config, duration=args.duration, reread=lambda: load_config(args.config, overrides))


def _cmd_bridge(args: argparse.Namespace) -> int:
    from stream.service.signals import install_stop_handlers
    from stream.wire.bridge import run_bridge
    from stream.wire.mqtt import parse_broker

    setup_logging("INFO")
    try:
        parse_broker(args.broker)
    except ValueError as exc:
        print(f"streamrec bridge: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    stop = threading.Event()
    install_stop_handlers(stop)
    curve = (args.server_key, args.client_key) if args.server_key and args.client_key else None
    try:
        run_bridge(args.broker, args.endpoint, args.kiosk, args.results, stop, args.duration, curve)
    except ImportError:
        print("streamrec bridge needs paho-mqtt: pip install 'streamrec[mqtt]'", file=sys.stderr)
        return exit_codes.RUNTIME_FAILURE
    return exit_codes.OK


def _cmd_subscribe(args: argparse.Namespace) -> int:
    from stream.service.signals import install_stop_handlers
    from stream.wire.subscriber import print_messages, receive

    stop = threading.Event()
    install_stop_handlers(stop)
    if (args.server_key is None) != (args.client_key is None):
        return _fail(exit_codes.USAGE, "--server-key and --client-key go together (a CurveZMQ client needs both)")
    curve = (args.server_key, args.client_key) if args.server_key else None
    messages = receive(args.endpoint, args.topic or (["event/"] if args.basket else [""]), stop=stop,
                       duration=args.duration, curve=curve)
    render = None
    if args.basket:
        from stream.wire.basket import Basket

        basket = Basket()
        render = lambda _topic, payload: basket.line_for(payload)  # noqa: E731
    try:
        print_messages(messages, sys.stdout, count=args.count, **({"render": render} if render else {}))
    except BrokenPipeError:
        pass
    return exit_codes.OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from stream.tools.demo import DEMO_LANE_SEED, DemoOptions, run_demo

    setup_logging("INFO")
    options = DemoOptions(duration=args.duration, headless=args.headless, endpoint=args.publish,
                          seed=DEMO_LANE_SEED if args.seed is None else args.seed, rebuild=args.rebuild)
    if args.evaluate:
        from stream.tools.demo_eval import run_evaluation

        return run_evaluation(options)
    return run_demo(options)


def _cmd_bench(args: argparse.Namespace) -> int:
    from stream.tools.bench.run import BenchPlan, run_bench

    setup_logging("WARNING")
    result = run_bench(BenchPlan(quick=args.quick, threads=args.threads, lanes=args.lanes, remote=args.remote), args.json)
    if "error" in result.get("remote", {}):
        print(f"streamrec bench: the remote rows were not measured: {result['remote']['error']}", file=sys.stderr)
        return exit_codes.CONFIG
    return exit_codes.OK


def _cmd_finetune(args: argparse.Namespace) -> int:
    from inference.training.dataset import DatasetError
    from inference.training.trainer import TrainConfig
    from stream.tools.finetune import FinetuneRequest, run_finetune

    setup_logging("INFO")
    size_ok = args.input_size is None or 32 <= args.input_size <= 1024
    if not size_ok or args.epochs < 1 or args.min_steps < 0 or not 0 < args.val_fraction < 1:
        return _fail(exit_codes.USAGE, "--input-size must be 32..1024, --epochs at least 1, --min-steps at least 0, "
                     "--val-fraction between 0 and 1")
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, freeze=args.freeze, patience=args.patience,
                        min_steps=args.min_steps, seed=args.seed)
    request = FinetuneRequest(args.data_dir, args.out, train, args.val, args.val_fraction, args.weights, args.name, args.lr,
                              args.input_size)
    try:
        run_finetune(request)
    except DatasetError as exc:
        return _fail(exit_codes.USAGE, f"dataset: {exc}")
    return exit_codes.OK


def _cmd_enroll(args: argparse.Namespace) -> int:
    from inference.enrollment import EnrollmentError
    from stream.tools.enroll import DEFAULT_EMPTY_LABELS, EnrollRequest, run_enroll

    setup_logging("WARNING")
    request = EnrollRequest(args.model, args.label, args.images, args.source, args.seconds, args.remove,
                            tuple(args.empty_labels or DEFAULT_EMPTY_LABELS))
    try:
        run_enroll(request)
    except EnrollmentError as exc:
        return _fail(exit_codes.USAGE, f"enroll: {exc}")
    return exit_codes.OK


def _cmd_model_info(args: argparse.Namespace) -> int:
    import json

    from inference.bundle import load_bundle
    from inference.gallery import describe, gallery_path_for, load_gallery

    bundle = load_bundle(args.bundle)
    summary = bundle.summary()
    path = gallery_path_for(args.bundle)
    if path.exists():
        summary["gallery"] = {"file": str(path), "products": describe(load_gallery(path, bundle.model_id))}
    print(json.dumps(summary, indent=2))
    return exit_codes.OK


def _cmd_model_export(args: argparse.Namespace) -> int:
    from config.schema import ModelConfig
    from inference.export import export_classifier
    from inference.loader import load_classifier

    setup_logging("WARNING")
    classifier = load_classifier(ModelConfig(spec=args.model, weights=args.weights))
    if args.format == "triton":
        return _export_triton(classifier, args)
    model_file, labels_file = export_classifier(classifier, args.format, args.out)
    crop = classifier.input_spec.crop
    print(f"wrote {model_file} and {labels_file} ({classifier.model_id}, input {crop}x{crop}); "
          f"run it with: streamrec run --model {args.format}:{model_file} --labels {labels_file}")
    return exit_codes.OK


def _export_triton(classifier, args: argparse.Namespace) -> int:
    from inference.triton_export import TritonSettings, export_triton

    settings = TritonSettings(max_batch=args.max_batch, instances=args.instances, kind=args.kind)
    folder = export_triton(classifier, args.out, args.name, settings)
    print(f"wrote Triton model {folder.name} ({classifier.model_id}) to {folder}: config.pbtxt, labels.txt, "
          f"1/model.onnx; serve it with: tritonserver --model-repository {args.out}")
    return exit_codes.OK


def _cmd_soak(args: argparse.Namespace) -> int:
    from stream.service.signals import install_stop_handlers
    from stream.tools.soak import SoakOptions, run_soak

    setup_logging("INFO")
    stop = threading.Event()
    install_stop_handlers(stop)
    options = SoakOptions(minutes=args.minutes, cameras=args.cameras, reconnect_every_s=args.reconnect_every,
                          sample_every_s=min(30.0, max(2.0, args.minutes * 60 / 30)))
    report = run_soak(options, stop, model=args.model, out=sys.stdout)
    for problem in report.problems:
        log.error("soak failed: %s", problem)
    start, end = report.start, report.end
    log.info("soak %s: rss %.1f -> %.1f MiB (%.1f after warm-up), threads %d -> %d, fds %d -> %d, sockets %d -> %d",
             "passed" if report.ok else "FAILED", start.rss_mib, end.rss_mib, report.baseline.rss_mib,
             start.threads, end.threads, start.fds, end.fds, start.sockets, end.sockets)
    return exit_codes.OK if report.ok else exit_codes.RUNTIME_FAILURE


def _cmd_check_config(args: argparse.Namespace) -> int:
    setup_logging("WARNING")
    config = load_config(args.file)
    names = ", ".join(f"{c.id}={c.spec.safe_text}" for c in config.cameras)
    print(f"{args.file}: ok ({len(config.cameras)} camera(s): {names}; model {config.model.spec})")
    return exit_codes.OK


def _cmd_keys_generate(args: argparse.Namespace) -> int:
    from stream.wire.curve import generate_keypair

    public, secret = generate_keypair(args.dir, args.name)
    print(f"wrote {public} (public: give it to the other side) and {secret} (secret: keep it here, mode 0600)")
    return exit_codes.OK


def _cmd_model_fetch(args: argparse.Namespace) -> int:
    from inference.weights import RESNET18_URL, fetch_weights, hub_checkpoint_dir

    dest = args.dest or hub_checkpoint_dir()
    path = fetch_weights(dest, url=args.url or RESNET18_URL, progress=sys.stderr.isatty())
    print(f"{path}: downloaded and verified")
    return exit_codes.OK


def _cmd_model_verify(args: argparse.Namespace) -> int:
    from inference.weights import RESNET18_FILE, RESNET18_HASH_PREFIX, hub_checkpoint_dir, verify_weights

    path = args.file or hub_checkpoint_dir() / RESNET18_FILE
    if not path.is_file():
        raise ModelError(f"{path}: no such file; run `streamrec model fetch` on a connected machine")
    if not verify_weights(path):
        print(f"{path}: checksum does NOT match the official ResNet-18 file (sha256 {RESNET18_HASH_PREFIX}…)")
        return exit_codes.CONFIG
    print(f"{path}: ok (sha256 starts with {RESNET18_HASH_PREFIX})")
    return exit_codes.OK


def _fail(code: int, message: str) -> int:
    print(f"streamrec: {message}", file=sys.stderr)
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `streamrec` console script and `python -m stream`."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        return _fail(exit_codes.USAGE, f"invalid config: {exc}")
    except ModelError as exc:
        return _fail(exit_codes.CONFIG, str(exc))
    except FetchError as exc:
        return _fail(exit_codes.RUNTIME_FAILURE, f"{exc}. On an offline kiosk, fetch on a connected machine and copy the file over.")
    except CurveKeyError as exc:
        return _fail(exit_codes.USAGE, f"invalid config: {exc}")
    except (PublishError, WebError) as exc:
        return _fail(exit_codes.RUNTIME_FAILURE, str(exc))
    except KeyboardInterrupt:
        return exit_codes.OK


def console_main() -> None:
    """The `streamrec` console script: `main`, then an exit that skips the interpreter's slow teardown."""
    exit_after_cleanup(main)


if __name__ == "__main__":
    console_main()
