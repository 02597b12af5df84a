#!/usr/bin/env python3
"""Validates request bodies the client sent against the published OpenAPI excerpt, with the
`jsonschema` package (an implementation this project did not write).

usage: validate_requests.py OPENAPI_YML CAPTURED_JSON

CAPTURED_JSON is a list of {"kind": "json", "body": {...}} (a JSON submit body, checked against
SubmitJson) and {"kind": "part", "name": "sttConfig", "text": "..."} (a multipart text part,
whose JSON is checked against the SubmitJson property of that name). Prints one line per
failure and `N passed, N failed`; exits 1 when any failed.
"""
import json
import sys

import jsonschema
import yaml


def main() -> int:
    spec_path, captured_path = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    submit = spec["components"]["schemas"]["SubmitJson"]
    with open(captured_path, encoding="utf-8") as f:
        captured = json.load(f)
    passed = failed = 0
    for item in captured:
        if item["kind"] == "json":
            schema, value, what = submit, item["body"], "JSON body"
        else:
            schema = submit["properties"][item["name"]]
            value, what = json.loads(item["text"]), f"multipart part {item['name']}"
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(value))
        if errors:
            failed += 1
            for error in errors:
                path = ".".join(str(p) for p in error.absolute_path) or "."
                print(f"FAIL {what} at {path}: {error.message}")
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
