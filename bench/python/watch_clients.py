#!/usr/bin/python3
"""Independent clients for the watcher benchmark (bench/watchers.ts): N clients at once, each on
its own connection, read one job's whole output through the API with Debian's python3-grpcio
(gRPC's C core), or the same number of bytes from a plain TLS server (Python's ssl, OpenSSL).

Every client connects and completes its handshake first; then all start together, and the time
from that start to the last client's last byte is measured. Prints one JSON object:
{"bytes": total, "seconds": elapsed, "cpu_seconds": this process's, handshakes included}.

    watch_clients.py grpc|tls --target HOST:PORT --ca CA --cert CRT --key KEY --clients N
        [--job ID] [--bytes EXPECTED]
"""
import argparse
import json
import resource
import socket
import ssl
import sys
import threading
import time

WATCH = "/jobworker.v1.JobService/WatchJobOutput"
READ_BYTES = 1 << 20


def watch_request(job_id):
    """WatchJobOutputRequest{id, offset: 0}, written by hand: field 1, a string."""
    raw = job_id.encode("ascii")
    return bytes([0x0A, len(raw)]) + raw


def grpc_client(args, ready, go, results, index):
    import grpc

    def read(path):
        with open(path, "rb") as file:
            return file.read()

    credentials = grpc.ssl_channel_credentials(read(args.ca), read(args.key), read(args.cert))
    options = [
        ("grpc.ssl_target_name_override", "localhost"),
        # A connection of its own, as separate clients would have.
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.max_receive_message_length", 16 << 20),
    ]
    with grpc.secure_channel(args.target, credentials, options=options) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        call = channel.unary_stream(WATCH, request_serializer=None, response_deserializer=None)
        ready.wait()
        go.wait()
        total = 0
        for message in call(watch_request(args.job), timeout=600):
            total += len(message)
        results[index] = (total, time.monotonic())


def tls_client(args, ready, go, results, index):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(args.ca)
    context.load_cert_chain(args.cert, args.key)
    host, port = args.target.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            ready.wait()
            go.wait()
            tls.sendall(b"!")
            buffer = bytearray(READ_BYTES)
            view = memoryview(buffer)
            total = 0
            while True:
                received = tls.recv_into(view)
                if received == 0:
                    break
                total += received
            results[index] = (total, time.monotonic())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("grpc", "tls"))
    for flag in ("--target", "--ca", "--cert", "--key"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--job", default="")
    args = parser.parse_args()

    client = grpc_client if args.mode == "grpc" else tls_client
    ready = threading.Barrier(args.clients + 1)
    go = threading.Event()
    results = [None] * args.clients

    def run(index):
        try:
            client(args, ready, go, results, index)
        except Exception as error:  # reported, and the others are released
            print(f"client {index}: {error!r}", file=sys.stderr)
            ready.abort()
            go.set()

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(args.clients)]
    for thread in threads:
        thread.start()
    try:
        ready.wait(timeout=120)
    except threading.BrokenBarrierError:
        sys.exit("the clients could not all connect")
    started = time.monotonic()
    go.set()
    for thread in threads:
        thread.join()
    if any(result is None for result in results):
        sys.exit("a client failed")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    json.dump(
        {
            "bytes": sum(total for total, _ in results),
            "seconds": max(ended for _, ended in results) - started,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
