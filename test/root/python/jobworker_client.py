#!/usr/bin/python3
"""An independent jobworker client: Debian's python3-grpcio (gRPC's C core) and python3-protobuf.

No generated stubs: the messages come from a FileDescriptorSet (`buf build -o image.binpb`) loaded
at run time, and the methods are called by their proto paths. It talks mutual TLS to the API,
starts a job, watches its output to the end, reads the job back, asks for a job it may not see,
lists its jobs and checks the standard health service; then prints one JSON object.

    jobworker_client.py --target 127.0.0.1:PORT --image image.binpb --ca ca.crt \
        --cert alice.crt --key alice.key --foreign-job ID -- ARGV...
"""
import argparse
import base64
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, json_format, message_factory

SERVICE = "/jobworker.v1.JobService/"
HEALTH = "/grpc.health.v1.Health/"


def load_messages(image_path):
    """Full proto name -> message class, built from a FileDescriptorSet (a buf image parses as one).

    GetMessages adds the files, dependencies first, to a descriptor pool apart from the default
    one, so the well-known types in the image never clash with those protobuf loaded itself.
    """
    files = descriptor_pb2.FileDescriptorSet()
    with open(image_path, "rb") as image:
        files.ParseFromString(image.read())
    return message_factory.GetMessages(files.file)


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--target", "--image", "--ca", "--cert", "--key", "--foreign-job"):
        parser.add_argument(flag, required=True)
    parser.add_argument("argv", nargs="+")
    args = parser.parse_args()

    messages = load_messages(args.image)
    chunk_fields = messages["jobworker.v1.OutputChunk"].DESCRIPTOR.fields_by_name
    output_stream = chunk_fields["stream"].enum_type

    def read(path):
        with open(path, "rb") as file:
            return file.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(args.key),
        certificate_chain=read(args.cert),
    )
    # The server certificate names localhost (and 127.0.0.1); connect by address, verify by name.
    options = [("grpc.ssl_target_name_override", "localhost")]
    result = {"grpc_version": grpc.__version__}
    with grpc.secure_channel(args.target, credentials, options=options) as channel:

        def unary(path, request_type, response_type):
            return channel.unary_unary(
                path,
                request_serializer=messages[request_type].SerializeToString,
                response_deserializer=messages[response_type].FromString,
            )

        def as_dict(message):
            return json_format.MessageToDict(message, preserving_proto_field_name=True)

        check = unary(
            HEALTH + "Check",
            "grpc.health.v1.HealthCheckRequest",
            "grpc.health.v1.HealthCheckResponse",
        )
        health = check(messages["grpc.health.v1.HealthCheckRequest"](service=""), timeout=30)
        result["health"] = as_dict(health).get("status", "UNKNOWN")

        start_job = unary(SERVICE + "StartJob", "jobworker.v1.StartJobRequest", "jobworker.v1.Job")
        started = start_job(messages["jobworker.v1.StartJobRequest"](argv=args.argv), timeout=30)
        result["started"] = as_dict(started)

        watch = channel.unary_stream(
            SERVICE + "WatchJobOutput",
            request_serializer=messages["jobworker.v1.WatchJobOutputRequest"].SerializeToString,
            response_deserializer=messages["jobworker.v1.OutputChunk"].FromString,
        )
        result["chunks"] = [
            {
                "stream": output_stream.values_by_number[chunk.stream].name,
                "offset": chunk.offset,
                "data": base64.b64encode(chunk.data).decode("ascii"),
            }
            for chunk in watch(
                messages["jobworker.v1.WatchJobOutputRequest"](id=started.id, offset=0), timeout=60
            )
        ]

        get_job = unary(SERVICE + "GetJob", "jobworker.v1.GetJobRequest", "jobworker.v1.Job")
        job = get_job(messages["jobworker.v1.GetJobRequest"](id=started.id), timeout=30)
        result["job"] = as_dict(job)
        # Presence, not just a value: proto3 `optional` fields know whether they were set.
        result["job_has_exit_code"] = job.HasField("exit_code")

        try:
            get_job(messages["jobworker.v1.GetJobRequest"](id=args.foreign_job), timeout=30)
            result["foreign"] = {"code": "OK"}
        except grpc.RpcError as error:
            result["foreign"] = {"code": error.code().name, "details": error.details()}

        list_jobs = unary(
            SERVICE + "ListJobs", "jobworker.v1.ListJobsRequest", "jobworker.v1.ListJobsResponse"
        )
        listing = list_jobs(messages["jobworker.v1.ListJobsRequest"](), timeout=30)
        result["listed"] = [{"id": listed.id, "owner": listed.owner} for listed in listing.jobs]

    json.dump(result, sys.stdout, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
