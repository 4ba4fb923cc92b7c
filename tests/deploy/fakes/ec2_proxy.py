"""A fault-injecting HTTP proxy in front of moto's EC2 server, for what moto lacks.

EC2's query API (``POST /`` form-encoded ``Action=...``) is forwarded to moto unchanged; the proxy
adds, as the AWS documentation describes them:

- ``ClientToken`` idempotency (moto stores the token but creates a second instance): a repeated
  RunInstances with the same token answers the first call's response again; the same token with
  different parameters answers 400 ``IdempotentParameterMismatch``.
- Errors in EC2's XML shape (``<Response><Errors><Error><Code>..``), with the HTTP statuses of
  AWS's "Error codes for the Amazon EC2 API": named errors ``no_capacity``
  (InsufficientInstanceCapacity, 500), ``host_capacity`` (InsufficientHostCapacity, 500),
  ``unsupported`` (Unsupported, 400), ``spot_price`` (SpotMaxPriceTooLow, 400), ``quota``
  (VcpuLimitExceeded, 400), ``instance_limit`` (InstanceLimitExceeded, 400), ``auth`` (AuthFailure,
  401), ``rate_limit`` (RequestLimitExceeded, 503), ``server_error`` (InternalError, 500),
  ``not_found`` (InvalidInstanceID.NotFound, 400).
- Eventual consistency: listing lag (a new instance missing from filtered DescribeInstances) and a
  terminated instance that still reads ``shutting-down`` for ``destroy_linger_calls`` reads.

Operations for faults: ``create`` (RunInstances), ``list`` (DescribeInstances with filters),
``get`` (DescribeInstances by id), ``destroy`` (TerminateInstances), ``stop``, ``start``.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs

import httpx

from tests.deploy.fakes.server import FakeApp, Fault, Handler, Request, Response

_ERRORS: dict[str, tuple[int, str, str]] = {
    "no_capacity": (500, "InsufficientInstanceCapacity",
                    "We currently do not have sufficient capacity in the Availability Zone you requested."),
    "host_capacity": (500, "InsufficientHostCapacity", "There is not enough capacity to fulfill your request."),
    "unsupported": (400, "Unsupported", "The requested configuration is currently not supported."),
    "spot_price": (400, "SpotMaxPriceTooLow", "Your Spot request price is lower than the minimum required."),
    "quota": (400, "VcpuLimitExceeded",
              "You have requested more vCPU capacity than your current vCPU limit allows."),
    "instance_limit": (400, "InstanceLimitExceeded", "You have requested more instances than your limit allows."),
    "auth": (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
    "rate_limit": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "server_error": (500, "InternalError", "An internal error has occurred"),
    "not_found": (400, "InvalidInstanceID.NotFound", "The instance ID does not exist"),
}
_OPS = {"RunInstances": "create", "TerminateInstances": "destroy", "StopInstances": "stop",
        "StartInstances": "start"}
_FORWARDED_HEADERS = ("content-type", "authorization", "x-amz-date", "x-amz-security-token", "x-amz-target",
                      "user-agent")


def ec2_error(code: str, message: str, status: int) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>")
    return Response(status, raw=body.encode(), content_type="text/xml")


def _ns(root: ET.Element) -> str:
    match = re.match(r"\{(.*)\}", root.tag)
    return match.group(1) if match else ""


class Ec2Proxy(FakeApp):
    """Forwards to moto at ``upstream`` and injects what moto cannot."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.tokens: dict[str, tuple[dict[str, list[str]], Response]] = {}
        self._lingering: dict[str, int] = {}
        self._http = httpx.Client(timeout=30.0)
        super().__init__()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/", self.handle), ("GET", "/", self.handle)]

    def error_response(self, name: str, fault: Fault) -> Response:
        status, code, message = _ERRORS[name]
        response = ec2_error(code, message, status)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response

    def reset_state(self) -> None:
        self.tokens.clear()
        self._lingering.clear()
        self._http.post(f"{self.upstream}/moto-api/reset").raise_for_status()

    def state(self) -> list[dict[str, Any]]:
        """Every instance moto holds, straight from moto (no lag, no faults)."""
        form = {"Action": "DescribeInstances", "Version": "2016-11-15"}
        # moto routes an unsigned call by the credential scope of the Authorization header
        scope = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0"
        answer = self._http.post(f"{self.upstream}/", data=form, headers={"Authorization": scope})
        root = ET.fromstring(answer.content)
        ns = {"e": _ns(root)}
        out = []
        for item in root.iterfind(".//e:instancesSet/e:item", ns):
            tags = {t.findtext("e:key", "", ns): t.findtext("e:value", "", ns)
                    for t in item.iterfind("e:tagSet/e:item", ns)}
            out.append({
                "id": item.findtext("e:instanceId", "", ns),
                "state": item.findtext("e:instanceState/e:name", "", ns),
                "client_token": item.findtext("e:clientToken", "", ns),
                "lifecycle": item.findtext("e:instanceLifecycle", "", ns),
                "instance_type": item.findtext("e:instanceType", "", ns),
                "tags": tags,
            })
        return out

    # -- the proxy ---------------------------------------------------------------------------------
    def handle(self, request: Request, match: re.Match[str]) -> Response:
        params = parse_qs(request.body.decode(), keep_blank_values=True) if request.body else dict(request.query)
        action = (params.get("Action") or [""])[0]
        if action == "DescribeInstances":
            op = "get" if any(k.startswith("InstanceId.") for k in params) else "list"
            return self.call(op, lambda: self._describe(request, params, op))
        if action == "RunInstances":
            token = (params.get("ClientToken") or [""])[0]
            with self.lock:
                seen = self.tokens.get(token) if token else None
            if seen is not None:
                first, answer = seen
                if first != params:
                    return ec2_error("IdempotentParameterMismatch",
                                     "The client token was already used with different parameters.", 400)
                return answer
            return self.call("create", lambda: self._run(request, params, token))
        if action == "TerminateInstances":
            return self.call("destroy", lambda: self._terminate(request, params))
        return self.call(_OPS.get(action, action), lambda: self._forward(request))

    def _forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k in _FORWARDED_HEADERS}
        answer = self._http.request(request.method, f"{self.upstream}{request.path}", content=request.body,
                                    headers=headers, params={k: v[0] for k, v in request.query.items()})
        return Response(answer.status_code, raw=answer.content,
                        content_type=answer.headers.get("content-type", "text/xml"))

    def _run(self, request: Request, params: dict[str, list[str]], token: str) -> Response:
        answer = self._forward(request)
        if answer.status == 200 and answer.raw is not None:
            root = ET.fromstring(answer.raw)
            ns = {"e": _ns(root)}
            for item in root.iterfind(".//e:instancesSet/e:item", ns):
                self.born(item.findtext("e:instanceId", "", ns))
            if token:
                self.tokens[token] = (params, answer)
        return answer

    def _terminate(self, request: Request, params: dict[str, list[str]]) -> Response:
        answer = self._forward(request)
        if answer.status == 200:
            for key, values in params.items():
                if key.startswith("InstanceId."):
                    self._lingering.setdefault(values[0], int(self.settings["destroy_linger_calls"]))
        return answer

    def _describe(self, request: Request, params: dict[str, list[str]], op: str) -> Response:
        answer = self._forward(request)
        if answer.status != 200 or answer.raw is None:
            return answer
        root = ET.fromstring(answer.raw)
        nsuri = _ns(root)
        ns = {"e": nsuri}
        ET.register_namespace("", nsuri)
        reservations = root.find("e:reservationSet", ns)
        if reservations is None:
            return answer
        ids = [i.findtext("e:instanceId", "", ns) for i in root.iterfind(".//e:instancesSet/e:item", ns)]
        visible = set(ids) if op == "get" else self.listed(ids)
        for reservation in list(reservations):
            instances = reservation.find("e:instancesSet", ns)
            if instances is None:
                continue
            for item in list(instances):
                instance_id = item.findtext("e:instanceId", "", ns)
                if instance_id not in visible:
                    instances.remove(item)
                    continue
                left = self._lingering.get(instance_id, 0)
                if left > 0:
                    self._lingering[instance_id] = left - 1
                    state = item.find("e:instanceState", ns)
                    if state is not None:
                        for child, value in (("code", "32"), ("name", "shutting-down")):
                            node = state.find(f"e:{child}", ns)
                            if node is not None:
                                node.text = value
            if len(instances) == 0:
                reservations.remove(reservation)
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return Response(200, raw=body, content_type="text/xml")
