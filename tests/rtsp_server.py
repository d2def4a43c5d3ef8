#!/usr/bin/python3
"""A real RTSP server for the camera-fault tests, run with the SYSTEM python (GStreamer's gi bindings).

    /usr/bin/python3 tests/rtsp_server.py --port 8554 [--pattern ball|static] [--user U --password P]

Serves rtsp://127.0.0.1:PORT/cam (H.264 from videotestsrc), prints "ready PORT" on stdout once it
listens, and runs until SIGTERM/SIGINT. `ball` moves, `static` repeats one picture (a frozen camera).
Not imported by pytest: the venv has no GStreamer; tests start it with tests/rtsp_fixture.py.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PATTERNS = {"ball": "pattern=ball", "static": "pattern=colors"}


def pipeline(pattern: str, width: int, height: int, fps: int) -> str:
    """The launch line of one client's media: a live test picture, H.264 without B-frames, a key frame each second."""
    return (
        f"( videotestsrc is-live=true {PATTERNS[pattern]} "
        f"! video/x-raw,width={width},height={height},framerate={fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        f"! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--pattern", choices=sorted(PATTERNS), default="ball")
    parser.add_argument("--size", default="160x120")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(args.pattern, width, height, args.fps))
    factory.set_shared(False)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", "media.factory.access", True)
        permissions.add_permission_for_role("viewer", "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"ready {args.port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
