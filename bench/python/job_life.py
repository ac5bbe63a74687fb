#!/usr/bin/python3
"""A job's life through the API, timed by an independent client (python3-grpcio, gRPC's C core),
beside the isolation floor run in this same loop.

One job's life: StartJob, then WatchJobOutput until it ends (the program ran and its output is
complete). The floor: `unshare -pf --mount-proc -n -u -i` then `setpriv` to an unprivileged uid
with no groups and no capabilities, running the same program. Both are timed alternately, one at
a time (latency) and N at a time (rate). Prints one JSON object.

The figures are a warm service's, as a long-running one is: a freshly started API and executor run
their code interpreted until V8 has compiled it, and are slower for the first few hundred jobs.
So one short round right after the start is timed on its own (`cold_per_second`), then
`--warmup` lives run (N at a time, the floor's too) before anything else is timed. Each rate round
runs `--rate-jobs` lives, so that its first and last moments, with fewer than N in flight, weigh
little.

    job_life.py --target 127.0.0.1:PORT --image image.binpb --ca ca.crt --cert c.crt --key c.key \
        --uid UID [--runs N] [--parallel N] [--warmup N] [--rate-jobs N]
"""
import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf import descriptor_pb2, message_factory

SERVICE = "/jobworker.v1.JobService/"


def load_messages(image_path):
    files = descriptor_pb2.FileDescriptorSet()
    with open(image_path, "rb") as image:
        files.ParseFromString(image.read())
    return message_factory.GetMessages(files.file)


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--target", "--image", "--ca", "--cert", "--key", "--uid"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--rate-jobs", type=int, default=200)
    args = parser.parse_args()
    messages = load_messages(args.image)

    def read(path):
        with open(path, "rb") as file:
            return file.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca), private_key=read(args.key), certificate_chain=read(args.cert)
    )
    options = [("grpc.ssl_target_name_override", "localhost")]
    floor = [
        "unshare", "-pf", "--mount-proc", "-n", "-u", "-i",
        "setpriv", f"--reuid={args.uid}", f"--regid={args.uid}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "true",
    ]
    with grpc.secure_channel(args.target, credentials, options=options) as channel:
        start_job = channel.unary_unary(
            SERVICE + "StartJob",
            request_serializer=messages["jobworker.v1.StartJobRequest"].SerializeToString,
            response_deserializer=messages["jobworker.v1.Job"].FromString,
        )
        watch = channel.unary_stream(
            SERVICE + "WatchJobOutput",
            request_serializer=messages["jobworker.v1.WatchJobOutputRequest"].SerializeToString,
            response_deserializer=messages["jobworker.v1.OutputChunk"].FromString,
        )

        def job_life():
            started = time.perf_counter()
            job = start_job(messages["jobworker.v1.StartJobRequest"](argv=["true"]), timeout=60)
            for _ in watch(messages["jobworker.v1.WatchJobOutputRequest"](id=job.id), timeout=60):
                pass
            return (time.perf_counter() - started) * 1000

        def floor_life():
            started = time.perf_counter()
            subprocess.run(floor, check=True)
            return (time.perf_counter() - started) * 1000

        def rate(life, count):
            started = time.perf_counter()
            with ThreadPoolExecutor(args.parallel) as pool:
                list(pool.map(lambda _: life(), range(count)))
            return count / (time.perf_counter() - started)

        for _ in range(5):  # the TLS session, the page cache
            job_life()
            floor_life()
        cold_round = args.parallel * 5
        cold = {"jobworker": rate(job_life, cold_round), "baseline": rate(floor_life, cold_round)}
        rate(job_life, args.warmup)
        rate(floor_life, args.warmup)

        jobworker, baseline = [], []
        for _ in range(args.runs):
            jobworker.append(job_life())
            baseline.append(floor_life())

        rates = {"jobworker": [], "baseline": []}
        for _ in range(3):
            rates["jobworker"].append(rate(job_life, args.rate_jobs))
            rates["baseline"].append(rate(floor_life, args.rate_jobs))

    figures = {
        "life_ms": {"jobworker": jobworker, "baseline": baseline},
        "per_second": rates,
        "cold_per_second": cold,
    }
    json.dump(figures, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
