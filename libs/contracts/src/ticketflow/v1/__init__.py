"""Generated protobuf and gRPC code for proto package ticketflow.v1. Do not edit."""
