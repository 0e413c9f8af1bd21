"""End-to-end test of running Seldon deployments, through Seldon's own SeldonClient.

Runs with the Seldon environment's python (it imports seldon_core). Reads a targets file:

    {"targets": [{"name": ..., "endpoint": "host:port", "payload": {"data": {"ndarray": ..}},
                  "bad": {"label": payload, ...}}]}

For each target: one prediction through ``SeldonClient.microservice`` (REST, ndarray),
every malformed payload must get a 4xx, and a good request afterwards must still work.
Prints a JSON report; exits 1 when any check fails.

    python e2e_seldon_client.py TARGETS_JSON
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import requests
from google.protobuf.json_format import MessageToDict
from seldon_core.seldon_client import SeldonClient

PREDICTIONS = "/api/v1.0/predictions"


def check(target: dict) -> dict:
    client = SeldonClient(transport="rest", payload_type="ndarray")
    rows = target["payload"]["data"]["ndarray"]
    data = np.array(rows, dtype=object if isinstance(rows[0][0], str) else float)
    start = time.perf_counter()
    response = client.microservice(
        data=data, method="predict", microservice_endpoint=target["endpoint"]
    )
    seconds = time.perf_counter() - start
    result: dict = {
        "name": target["name"],
        "success": bool(response.success),
        "seconds": round(seconds, 4),
        "problems": [],
    }
    if response.success:
        message = response.response
        body = message if isinstance(message, dict) else MessageToDict(message)
        result["prediction"] = body.get("data", {}).get("ndarray")
        if not result["prediction"]:
            result["problems"].append(f"no ndarray in the answer: {body}")
    else:
        result["problems"].append(f"SeldonClient prediction failed: {response.msg}")
    url = f"http://{target['endpoint']}{PREDICTIONS}"
    for label, payload in target.get("bad", {}).items():
        answer = requests.post(url, json=payload, timeout=10)
        if not 400 <= answer.status_code < 500:
            result["problems"].append(f"{label}: expected 4xx, got {answer.status_code}")
    again = requests.post(url, json=target["payload"], timeout=10)
    if again.status_code != 200:
        result["problems"].append(f"after bad requests the server answered {again.status_code}")
    result["passed"] = result["success"] and not result["problems"]
    return result


def main(path: str) -> int:
    with open(path) as handle:
        targets = json.load(handle)["targets"]
    results = [check(t) for t in targets]
    print(json.dumps({"passed": all(r["passed"] for r in results), "results": results}))
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
