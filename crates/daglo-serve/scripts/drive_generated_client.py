"""Generates a Python client from daglo serve's OpenAPI document with openapi-python-client
(the mainstream generator) and drives a running service with it.

usage: drive_generated_client.py SPEC OUT_DIR BASE_URL API_KEY

Fails (exit 1) when openapi-spec-validator rejects the document, when the generator warns or skips anything, or when any call does not return
the typed model its document promises: create by URL and by upload, get, list and page
through, the transcript in each format, and a typed 404, 409 and 422.
"""

import io
import os
import subprocess
import sys
import time


def main() -> int:
    spec, out, base, key = sys.argv[1:5]
    # The document itself, by the reference validator of OpenAPI 3.x.
    from openapi_spec_validator import validate
    from openapi_spec_validator.readers import read_from_filename
    document, _ = read_from_filename(spec)
    validate(document)
    print("ok   openapi-spec-validator")
    os.makedirs(out, exist_ok=True)
    config = os.path.join(out, "generator.yaml")
    with open(config, "w") as f:
        f.write("post_hooks: []\nproject_name_override: daglo-serve-client\npackage_name_override: daglo_serve_client\n")
    generator = os.path.join(os.path.dirname(sys.executable), "openapi-python-client")
    target = os.path.join(out, "client")
    run = subprocess.run(
        [generator, "generate", "--path", spec, "--output-path", target, "--meta", "none",
         "--config", config, "--overwrite"],
        capture_output=True, text=True,
    )
    said = run.stdout + run.stderr
    if run.returncode != 0 or "Warning" in said or "Unable" in said or "skipped" in said.lower():
        print(f"the generator did not take the document cleanly:\n{said}")
        return 1
    sys.path.insert(0, out)
    os.rename(target, os.path.join(out, "daglo_serve_client")) if not os.path.exists(
        os.path.join(out, "daglo_serve_client")) else None

    from daglo_serve_client import AuthenticatedClient
    from daglo_serve_client.api.default import (
        create_job, delete_job, get_job, get_transcript, list_jobs,
    )
    from daglo_serve_client.models import Error, ErrorCode, Job, JobList, JobRequest, JobUpload, JobState
    from daglo_serve_client.models.transcript_format import TranscriptFormat
    from daglo_serve_client.types import File

    client = AuthenticatedClient(base_url=base, token=key, raise_on_unexpected_status=True)
    checks = []

    def check(what, ok, detail=""):
        checks.append((what, ok))
        print(("ok   " if ok else "FAIL ") + what + ("" if ok else f": {detail}"))

    made = create_job.sync_detailed(client=client, body=JobRequest(url="https://a.example/py-1.wav", key="py-1"))
    check("create by URL: 201 and a Job", made.status_code == 201 and isinstance(made.parsed, Job), made)
    by_url = made.parsed
    upload = JobUpload(file=File(payload=io.BytesIO(b"\x01" * 256), file_name="py-call.wav", mime_type="audio/wav"),
                       key="py-2", labels='{"team": "py"}')
    made = create_job.sync_detailed(client=client, body=upload)
    check("create by upload: 201 and a Job", made.status_code == 201 and isinstance(made.parsed, Job), made)
    by_upload = made.parsed
    check("the upload's input names its file", by_upload.input_ == "upload:py-call.wav", by_upload.input_)

    got = get_job.sync(by_url.id, client=client)
    check("get: a Job", isinstance(got, Job) and got.id == by_url.id, got)

    seen, cursor = [], None
    while True:
        page = list_jobs.sync(client=client, limit=1, **({"cursor": cursor} if cursor else {}))
        if not isinstance(page, JobList):
            check("list: a JobList", False, page)
            break
        seen += [job.id for job in page.jobs]
        cursor = page.next_cursor
        if not cursor:
            break
    check("list and page through, one at a time", seen == [by_upload.id, by_url.id], seen)
    labelled = list_jobs.sync(client=client, label=["team=py"])
    check("list by label", isinstance(labelled, JobList) and [j.id for j in labelled.jobs] == [by_upload.id], labelled)

    deadline = time.monotonic() + 60
    for job in (by_url, by_upload):
        while time.monotonic() < deadline:
            now = get_job.sync(job.id, client=client)
            if now.state == JobState.FINISHED:
                break
            time.sleep(0.05)
        check(f"{job.id} finished", now.state == JobState.FINISHED, now.state)

    for fmt in (TranscriptFormat.TEXT, TranscriptFormat.JSON, TranscriptFormat.SRT):
        answer = get_transcript.sync_detailed(by_url.id, client=client, format_=fmt)
        check(f"transcript as {fmt.value}: 200", answer.status_code == 200 and len(answer.content) > 0, answer.status_code)

    missing = get_job.sync("job_00000000000000000000000000", client=client)
    check("a typed 404", isinstance(missing, Error) and missing.code == ErrorCode.NOT_FOUND, missing)
    reused = create_job.sync_detailed(client=client, body=JobRequest(url="https://a.example/other.wav", key="py-1"))
    check("a typed 409 (a key reused by another request)",
          reused.status_code == 409 and isinstance(reused.parsed, Error)
          and reused.parsed.code == ErrorCode.KEY_REUSED and reused.parsed.job_id == by_url.id, reused)
    bad = list_jobs.sync_detailed(client=client, limit=0)
    check("a typed 422", bad.status_code == 422 and isinstance(bad.parsed, Error)
          and bad.parsed.code == ErrorCode.INVALID_REQUEST, bad)
    gone = delete_job.sync_detailed(by_url.id, client=client)
    check("delete: 204", gone.status_code == 204, gone.status_code)

    failed = [what for what, ok in checks if not ok]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
