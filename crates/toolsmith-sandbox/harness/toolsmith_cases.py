"""Runs a tool's entry function on the spec's test cases and streams what it returned.

Usage: python /harness/toolsmith_cases.py MODULE FUNCTION CASES_JSON

The cases and the nonce are read before the tool is imported. Each result goes to the service
as a nonce-tagged JSON line on descriptor 4. The expected outputs are not here: the service
compares results itself, so nothing the tool prints, forges or exits with can turn a wrong
result into a pass.
"""

import importlib
import json
import os
import sys
import traceback

def _channel():
    # The nonce lives only in this closure, not in a module global.
    with os.fdopen(5, "r") as nonce_pipe:
        nonce = nonce_pipe.readline().strip()
    out = os.fdopen(4, "w", buffering=1)

    def send(kind, **fields):
        out.write(nonce + " " + json.dumps({"kind": kind, **fields}) + "\n")
        out.flush()

    return send


def main(send):
    module_name, function_name, cases_path = sys.argv[1:4]
    with open(cases_path) as f:
        cases = json.load(f)
    send("started", count=len(cases))
    try:
        sys.path.insert(0, os.getcwd())
        function = getattr(importlib.import_module(module_name), function_name)
    except BaseException as err:  # noqa: BLE001 - everything the import does is the tool's
        send("import_error", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc()[-4000:])
        return
    for case in cases:
        name = case.get("name", "")
        try:
            result = function(**case.get("input", {}))
        except BaseException as err:  # noqa: BLE001
            send("case", name=name, ok=False, error=f"{type(err).__name__}: {err}",
                 traceback=traceback.format_exc()[-4000:])
            continue
        try:
            encoded = json.loads(json.dumps(result, allow_nan=False))
        except (TypeError, ValueError) as err:
            send("case", name=name, ok=False, error=f"the result is not JSON: {err}")
            continue
        send("case", name=name, ok=True, result=encoded)
    send("finished")


main(_channel())
