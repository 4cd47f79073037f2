"""Generated KServe v2 gRPC stubs and the .proto files they come from (see README.md here)."""
