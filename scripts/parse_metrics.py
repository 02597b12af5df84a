"""Parses Prometheus text (from the URL given, else stdin) with the prometheus-client library's own parser and prints
every sample as JSON lines: {"name": ..., "labels": {...}, "value": ...}. Exits non-zero, with
the parser's message, on text the parser refuses."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    if len(sys.argv) > 1:
        from urllib.request import urlopen

        with urlopen(sys.argv[1], timeout=10) as answer:
            text = answer.read().decode("utf-8")
    else:
        text = sys.stdin.read()
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                print(json.dumps({
                    "family": family.name,
                    "type": family.type,
                    "name": sample.name,
                    "labels": sample.labels,
                    "value": sample.value,
                }))
    except Exception as error:  # the parser's own refusal, reported as such
        print(f"unparsable metrics: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
