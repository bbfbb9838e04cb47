"""The instance metadata service of the boot sandbox (boot_sandbox.py)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


class _Imds(BaseHTTPRequestHandler):
    """The instance metadata service as the launch template's MetadataOptions configure it
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html):
    HttpTokens=required refuses a GET without a session token with 401
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html);
    HttpEndpoint=disabled gives no answer at all. The hop limit cannot matter on loopback
    (one hop); it is recorded on the run for tests to assert.

    The keys it serves are the server's ``metadata`` (instance-id, placement; and
    autoscaling/target-lifecycle-state when the scenario has one: the group's target state
    for the instance, e.g. InService or Terminated,
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html);
    any other key is 404 Not Found, as IMDS answers for a key it does not have
    (instancedata-data-retrieval.html below, "HTTP error codes").

    A scenario may make it briefly unavailable: the first ``failures["token"]`` token PUTs
    and the first ``failures["get"]`` metadata GETs answer 503 Service Unavailable. The real
    IMDS throttles queries per instance and may answer 503 to a request it cannot complete;
    AWS's advice is to retry, with exponential back-off (EC2 User Guide, "Access instance
    metadata for an EC2 instance": its HTTP error codes and "Query throttling",
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html#instancedata-throttling).
    A 503 to the token PUT during boot is seen in practice (canonical/cloud-init#5577).
    A throttled request is refused before its token is looked at."""

    def do_PUT(self):  # noqa: N802
        self.server.requests.append(("PUT", self.path, dict(self.headers)))
        if self._disabled():
            return
        if self.path == "/latest/api/token" and self._unavailable("token"):
            return
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self._reply(200, self.server.token)
        self._reply(400, "")

    def do_GET(self):  # noqa: N802
        self.server.requests.append(("GET", self.path, dict(self.headers)))
        if self._disabled() or self._unavailable("get"):
            return
        token = self.headers.get("X-aws-ec2-metadata-token")
        if token != self.server.token and (token is not None or self.server.options.get("HttpTokens") == "required"):
            return self._reply(401, "")
        key = self.path.removeprefix("/latest/meta-data/")
        if key in self.server.metadata:
            return self._reply(200, self.server.metadata[key])
        self._reply(404, "")

    def _disabled(self) -> bool:
        if self.server.options.get("HttpEndpoint", "enabled") == "disabled":
            self.close_connection = True  # no answer
            return True
        return False

    def _unavailable(self, kind: str) -> bool:
        """Answer 503 while this kind of request still has scenario failures left."""
        with self.server.lock:  # one counter, however the server threads interleave
            if self.server.failures[kind] <= 0:
                return False
            self.server.failures[kind] -= 1
        self._reply(503, "<html><body><h1>503 Service Unavailable</h1></body></html>\n")
        return True

    def _reply(self, status: int, body: str):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass
