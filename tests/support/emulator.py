"""A moto server with this project's moto 5.2.5 shims, for running the CLI by hand:

    python -m tests.support.emulator --port 5000
    AWS_ENDPOINT_URL=http://127.0.0.1:5000 k3s-infra deploy --config my-env.yaml --yes

A plain moto 5.2.5 server cannot create this root stack (nested-stack Outputs,
network load balancers, KMS/SSM tags and Secrets Manager secrets are missing in its
CloudFormation; see moto_shims.py). The shims mirror real AWS; the product is unchanged.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading


def main() -> None:
    parser = argparse.ArgumentParser(description="moto server with k3s_infra's CloudFormation shims")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    from moto.server import ThreadedMotoServer

    from tests.support import moto_shims, node_boot

    moto_shims.apply()
    node_boot.apply()  # launched nodes report ready at once (deploy waits for it)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    print(f"moto {moto_shims.MOTO_VERSION} with shims on http://127.0.0.1:{args.port} (Ctrl-C stops)", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    main()
