"""The emulator in this process: moto's server on 127.0.0.1 with the shims and the node
stand-ins applied, seeded with the VPC of seed.py through its own EC2 API."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from k3s_infra.emulator import nodes, seed, shims
from k3s_infra.emulator.state import ACCESS_KEY


@dataclass
class Serving:
    server: Any  # werkzeug's BaseWSGIServer
    thread: threading.Thread
    port: int
    network: seed.Network

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


def serve(port: int, region: str) -> Serving:
    """Bind ``port`` (0: any free one; OSError when taken), serve in a thread, seed ``region``."""
    import boto3
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the log
    shims.apply()
    nodes.apply()
    nodes.apply_kubeconfig()
    nodes.apply_ssm_agent()
    # moto's ThreadedMotoServer binds inside its thread and waits forever when the port is
    # taken: binding here makes that an OSError.
    server = make_server("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), True,
                         request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
    thread.start()
    serving = Serving(server, thread, server.server_address[1], None)  # type: ignore[arg-type]
    try:
        ec2 = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=ACCESS_KEY,
                                    region_name=region).client("ec2", endpoint_url=serving.endpoint)
        serving.network = seed.network(ec2, region)
    except BaseException:
        serving.stop()
        raise
    return serving
