"""ipc:// endpoints: a live socket of another process is refused, a stale one replaced, an unsafe directory refused."""

import os
import socket
import stat

import pytest

from stream.wire.errors import PublishError
from stream.wire.publisher import ZmqPublisher
from tests.fakes import Subscriber


@pytest.fixture
def private_dir(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o750)
    return directory


def test_a_socket_another_process_listens_on_is_refused(private_dir):
    path = private_dir / "pub.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as foreign:
        foreign.bind(str(path))
        foreign.listen()
        with pytest.raises(PublishError, match="another process is listening"):
            ZmqPublisher(f"ipc://{path}").bind()
        assert path.exists()


def test_a_live_streamrec_publisher_is_not_taken_over(private_dir):
    endpoint = f"ipc://{private_dir / 'pub.sock'}"
    with ZmqPublisher(endpoint):
        with pytest.raises(PublishError, match="another process is listening"):
            ZmqPublisher(endpoint).bind()


def test_a_stale_socket_file_is_replaced_and_serves_subscribers(private_dir):
    path = private_dir / "pub.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nothing listens: a crashed run's leftover
    assert stat.S_ISSOCK(path.lstat().st_mode)
    with ZmqPublisher(f"ipc://{path}") as publisher, Subscriber(f"ipc://{path}") as subscriber:
        # keep publishing until the (slow-joining) subscriber has something
        subscriber.collect_until(lambda messages: bool(messages) or not publisher.send((b"heartbeat", b"{}")), 10)
    assert subscriber.messages


def test_a_regular_file_in_the_way_is_refused(private_dir):
    (private_dir / "pub.sock").write_text("not a socket")
    with pytest.raises(PublishError, match="is not a socket"):
        ZmqPublisher(f"ipc://{private_dir / 'pub.sock'}").bind()


@pytest.mark.parametrize("mode", [0o770, 0o757])
def test_a_directory_other_users_can_write_is_refused(tmp_path, mode):
    directory = tmp_path / "shared"
    directory.mkdir()
    os.chmod(directory, mode)
    with pytest.raises(PublishError, match="writable by other users"):
        ZmqPublisher(f"ipc://{directory / 'pub.sock'}").bind()


def test_the_socket_is_open_to_the_services_group(private_dir):
    old_umask = os.umask(0o077)  # the unit's UMask=
    try:
        with ZmqPublisher(f"ipc://{private_dir / 'pub.sock'}"):
            mode = stat.S_IMODE((private_dir / "pub.sock").stat().st_mode)
    finally:
        os.umask(old_umask)
    assert mode == 0o660
