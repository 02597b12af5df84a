"""Checks answers captured from a running `daglo serve` against its OpenAPI document
(docs/serve-openapi.yaml), with the jsonschema library: every answer's path, method and status
must be documented, and a JSON body must match the documented schema.

Usage: check_serve_api.py SPEC.yaml CAPTURED.json — CAPTURED is a list of
{"method", "path" (the template, e.g. /v1/jobs/{id}), "status", "content_type", "body"}.
Prints one line per answer; exits 1 if any does not match."""

import json
import sys

import jsonschema
import yaml


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target = spec
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def main() -> int:
    spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
    captured = json.load(open(sys.argv[2], encoding="utf-8"))
    failures = 0
    for answer in captured:
        where = f'{answer["method"]} {answer["path"]} -> {answer["status"]}'
        operation = spec["paths"].get(answer["path"], {}).get(answer["method"].lower())
        if operation is None:
            print(f"FAIL {where}: not in the document")
            failures += 1
            continue
        response = operation["responses"].get(str(answer["status"]))
        if response is None:
            print(f"FAIL {where}: status not documented")
            failures += 1
            continue
        response = resolve(spec, response)
        kind = (answer.get("content_type") or "").split(";")[0].strip()
        content = response.get("content", {})
        if content and kind not in content:
            print(f"FAIL {where}: content type {kind!r} not documented ({list(content)})")
            failures += 1
            continue
        if kind == "application/json":
            schema = dict(resolve(spec, content[kind]["schema"]))
            schema["components"] = spec["components"]
            try:
                jsonschema.validate(answer["body"], schema, format_checker=jsonschema.FormatChecker())
            except jsonschema.ValidationError as error:
                print(f"FAIL {where}: {error.message}")
                failures += 1
                continue
        print(f"ok   {where}")
    print(f"{len(captured) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
