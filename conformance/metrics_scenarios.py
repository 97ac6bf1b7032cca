#!/usr/bin/env python3
"""Conformance scenario for /_strata/metrics: boto3 traffic (its default checksums and
aws-chunked uploads included) must move the Prometheus counters by exactly what was sent.

Run through conformance/run.sh (suite "metrics"), which starts the server with the default
metrics settings: loopback scrapes allowed, which is what this process is.
"""

import os
import re
import shutil
import sys
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import Suite, check, eq

suite = Suite("metrics")

for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

s3 = boto3.session.Session(
    aws_access_key_id=suite.access_key,
    aws_secret_access_key=suite.secret_key,
    region_name="us-east-1",
).client(
    "s3",
    endpoint_url=suite.endpoint,
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape():
    """{(name, frozenset(labels)): value}, checking that each sample's family is declared."""
    with urllib.request.urlopen(suite.endpoint + "/_strata/metrics", timeout=30) as resp:
        eq(resp.status, 200, "metrics status")
        check(resp.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
              "metrics content type", "text/plain; version=0.0.4", resp.headers.get("Content-Type"))
        text = resp.read().decode()
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m is not None, "a well-formed sample line", "name{labels} value", line)
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = name if name in types else re.sub(r"_(bucket|sum|count)$", "", name)
        check(family in types, f"sample {name} belongs to a declared family", "a # TYPE line", sorted(types))
        samples[(name, frozenset(LABEL.findall(labels)))] = float(value)
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


@suite.scenario
def boto3_traffic_moves_the_counters():
    before = scrape()
    bucket = suite.bucket_name("metrics")
    s3.create_bucket(Bucket=bucket)
    bodies = [os.urandom(70_000), os.urandom(1_000)]
    for i, body in enumerate(bodies):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=body)
    got = s3.get_object(Bucket=bucket, Key="k0")["Body"].read()
    eq(len(got), len(bodies[0]), "get_object length")
    try:
        s3.head_object(Bucket=bucket, Key="missing")
        check(False, "HEAD of a missing key", "404", "200")
    except ClientError as e:
        eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 404, "HEAD of a missing key")
    s3.list_objects_v2(Bucket=bucket)
    s3.delete_object(Bucket=bucket, Key="k1")
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    eq(delta("strata_requests_total", op="CreateBucket", status=200), 1, "CreateBucket 200")
    eq(delta("strata_requests_total", op="PutObject", status=200), 2, "PutObject 200")
    eq(delta("strata_requests_total", op="GetObject", status=200), 1, "GetObject 200")
    eq(delta("strata_requests_total", op="HeadObject", status=404), 1, "HeadObject 404")
    eq(delta("strata_requests_total", op="ListObjectsV2", status=200), 1, "ListObjectsV2 200")
    eq(delta("strata_requests_total", op="DeleteObject", status=204), 1, "DeleteObject 204")
    eq(delta("strata_request_duration_seconds_count", op="PutObject"), 2, "PutObject latency samples")
    received = delta("strata_received_bytes_total")
    check(received >= sum(map(len, bodies)), "received bytes cover the uploads",
          f">= {sum(map(len, bodies))}", received)
    sent = delta("strata_sent_bytes_total")
    check(sent >= len(bodies[0]), "sent bytes cover the download", f">= {len(bodies[0])}", sent)


if __name__ == "__main__":
    try:
        rc = suite.main()
    finally:
        shutil.rmtree(suite.scratch, ignore_errors=True)
    sys.exit(rc)
