"""Running the app on uvicorn: the socket, the startup line, signals, and several worker processes.

SIGTERM or SIGINT: uvicorn stops accepting connections, lets every request already accepted finish (the batcher
computes what is queued before the app's shutdown ends), then returns; the process exits 0. uvicorn (from 0.29 on)
raises the caught signal again once it has shut down, so that a parent sees "killed by SIGTERM"; a server that has
shut down cleanly says so with status 0 instead, so `serve` holds its own handler under uvicorn's and lets the
re-raised signal land there.

With --workers N, uvicorn's supervisor starts N processes on the one listening socket (the kernel hands each new
connection to one of them); each loads the model and batches its own requests, with the cores shared among them.
uvicorn is imported in these functions only (the `serve` extra).
"""

import dataclasses
import json
import logging
import os
import signal
import socket
import sys

from ..errors import MinibertError
from .app import Settings, build_app
from .models import load_service

log = logging.getLogger("minibert.serve")

# Where --workers passes the model and the settings to the processes uvicorn spawns.
WORKER_ENVIRONMENT = "MINIBERT_SERVE_WORKER"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def say(line: str) -> None:
    """The startup line, whatever --log-level says: where the server listens and what it serves."""
    print(line, file=sys.stderr, flush=True)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port and listening (port 0: one the kernel picks; read it with getsockname)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def require_serve_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise MinibertError(
            f"minibert serve needs starlette and uvicorn ({error}): pip install 'minibert-numpy[serve]'"
        ) from None


def serve(
    model: str,
    settings: Settings,
    *,
    host: str,
    port: int,
    name: str | None,
    kind: str,
    workers: int,
    log_level: str,
):
    """Serve until SIGTERM or SIGINT; 0 once every accepted request is answered."""
    require_serve_extra()
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    sock = listening_socket(host, port)
    stopped_by = []
    previous = {sig: signal.signal(sig, lambda sig, frame: stopped_by.append(sig)) for sig in HANDLED_SIGNALS}
    try:
        if workers == 1:
            serve_one(load_service(model, name, kind), settings, sock, log_level)
        else:
            # the cores shared among the workers, unless the user chose a count
            os.environ.setdefault("MINIBERT_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // workers)))
            os.environ[WORKER_ENVIRONMENT] = json.dumps(
                {
                    "model": model,
                    "name": name,
                    "kind": kind,
                    "log_level": log_level,
                    "settings": dataclasses.asdict(settings),
                }
            )
            config = uvicorn.Config(
                "minibert.serve.server:worker_app",
                factory=True,
                workers=workers,
                log_config=None,
                log_level=log_level,
                access_log=False,
            )
            say(f"minibert serve: {workers} worker processes for {model}, listening on {url(sock)}")
            Multiprocess(config, sockets=[sock]).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if stopped_by:
        log.info("minibert serve: stopped by %s", signal.Signals(stopped_by[0]).name)
    return 0


def warm_up(service) -> None:
    """The first call's one-time costs (thread pool, BLAS buffers), paid before any client waits for them."""
    service.compute(None, [("warm", "up")] if service.kind == "reranker" else ["warm up"])


def serve_one(service, settings: Settings, sock: socket.socket, log_level: str) -> None:
    """One process: warm the model up, say where it listens, serve on `sock` until a signal."""
    import uvicorn

    warm_up(service)
    config = uvicorn.Config(build_app(service, settings), log_config=None, log_level=log_level, access_log=False)
    say(f"minibert serve: {service.describe()}, listening on {url(sock)} (pid {os.getpid()})")
    uvicorn.Server(config).run(sockets=[sock])


def worker_app():
    """The app of one --workers process (uvicorn calls this factory in each): the model and settings the parent
    put in the environment."""
    options = json.loads(os.environ[WORKER_ENVIRONMENT])
    logging.basicConfig(level=options["log_level"].upper(), format=LOG_FORMAT)
    service = load_service(options["model"], options["name"], options["kind"])
    warm_up(service)
    log.info("worker %d: %s", os.getpid(), service.describe())
    return build_app(service, Settings(**options["settings"]))
