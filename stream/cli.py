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
from stream import exit_codes
from stream.logs import setup_logging
from stream.errors import PublishError

log = logging.getLogger("streamrec")


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add_run_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the recognizer on the configured cameras")
    run.add_argument("--config", type=Path, help="TOML config file (default: the packaged config/default.toml)")
    run.add_argument("--source", action="append", default=[], metavar="SPEC",
                     help="camera source, repeatable (usb:0, /dev/video0, rtsp://…, file:PATH, synthetic); replaces the config's cameras")
    run.add_argument("--publish", metavar="ENDPOINT", help=f"ZeroMQ endpoint to bind (default {DEFAULT_ENDPOINT})")
    run.add_argument("--headless", action="store_true", help="no overlay window")
    run.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop after this many seconds")
    run.add_argument("--model", metavar="SPEC", help="resnet18, a bundle path, onnx:FILE or torchscript:FILE")
    run.add_argument("--labels", metavar="FILE", help="labels file for onnx:/torchscript: models")
    run.set_defaults(handler=_cmd_run)


def _add_subscribe_parser(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("subscribe", help="print published messages, one JSON object per line")
    sub.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help=f"publisher endpoint (default {DEFAULT_ENDPOINT})")
    sub.add_argument("--topic", action="append", default=[], metavar="PREFIX",
                     help="topic prefix to receive, repeatable (result/, event/cam0, heartbeat); default all")
    sub.add_argument("--count", type=int, metavar="N", help="exit after N messages")
    sub.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="exit after this many seconds")
    sub.set_defaults(handler=_cmd_subscribe)


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


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(prog="streamrec", description="Real-time camera recognizer for self-checkout kiosks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_run_parser, _add_subscribe_parser, _add_check_config_parser, _add_model_parser):
        add(commands)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from stream.runner import run_pipeline

    overrides = Overrides(
        sources=tuple(args.source), endpoint=args.publish, headless=args.headless, model=args.model, labels=args.labels
    )
    config = load_config(args.config, overrides)
    setup_logging(config.logging.level)
    return run_pipeline(config, duration=args.duration)


def _cmd_subscribe(args: argparse.Namespace) -> int:
    from stream.signals import install_stop_handlers
    from stream.subscriber import print_messages, receive

    stop = threading.Event()
    install_stop_handlers(stop)
    messages = receive(args.endpoint, args.topic or [""], stop=stop, duration=args.duration)
    try:
        print_messages(messages, sys.stdout, count=args.count)
    except BrokenPipeError:
        pass
    return exit_codes.OK


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    names = ", ".join(f"{c.id}={c.spec.safe_text}" for c in config.cameras)
    print(f"{args.file}: ok ({len(config.cameras)} camera(s): {names}; model {config.model.spec})")
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
    except PublishError as exc:
        return _fail(exit_codes.RUNTIME_FAILURE, str(exc))
    except KeyboardInterrupt:
        return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
